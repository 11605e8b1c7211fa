"""The `neurohebb` command line.

Each subcommand lives in its own module under `neurohebb/commands/` exposing
`register(subparsers) -> None`; registering imports only argparse-level code, so `--help` is
instant and a missing optional backend only matters to the command that needs it. A
`NeurohebbError` becomes a one-line message and exit code 2; anything else is a bug.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import sys
import warnings

from . import __version__
from .errors import NeurohebbError

# Order is the order shown in --help. Modules that do not exist (yet) are skipped.
COMMAND_MODULES = (
    "demo", "train", "eval", "download", "sweep", "feasibility", "deploy", "export", "compare", "stpn",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurohebb",
        description="Train soft winner-take-all Hebbian networks and ask what they lose on neuromorphic chips.",
    )
    parser.add_argument("--version", action="version", version=f"neurohebb {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module_name = f"neurohebb.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def _terminate_like_interrupt() -> None:
    """Turn SIGTERM (a `kill`, a job scheduler's time limit) into KeyboardInterrupt, so staged run
    directories are cleaned up and finished sweep points kept, as with Ctrl-C."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _terminate_like_interrupt()
    from .memory import retain_freed_memory

    retain_freed_memory()  # reuse freed activation blocks instead of page-faulting them in again
    with _warnings_held() as held:
        try:
            result = args.func(args)
        except NeurohebbError as exc:
            held.clear()  # a one-line error stays one line: the warnings were about the failed work
            print(f"neurohebb: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except OSError as exc:
            from .atomic import filesystem_error, is_filesystem_error

            if not (is_filesystem_error(exc) and exc.filename):
                raise
            held.clear()  # a disk problem a writer did not catch itself: still the user's to fix
            print(f"neurohebb: error: {filesystem_error(exc.filename, exc, 'access')}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("neurohebb: interrupted; completed results were kept", file=sys.stderr)
            return 130
    return int(result or 0)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@contextlib.contextmanager
def _warnings_held():
    """Hold Python warnings until the command ends: shown once it succeeded, dropped when it ends
    in a one-line error (they were about work that failed, and would bury the message)."""
    held: list = []
    with warnings.catch_warnings(record=True) as caught:
        try:
            yield caught
        finally:
            held = list(caught)
    for w in held:
        print(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line).rstrip(), file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
