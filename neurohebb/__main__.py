"""`python -m neurohebb`: the CLI, runnable from the source tree without installing."""
import sys

from .cli import main

sys.exit(main())
