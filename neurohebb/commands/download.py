"""`neurohebb download NAME`: fetch a dataset's canonical files and check that they load."""
from __future__ import annotations

import argparse

from ..data.registry import cli_names

NAMES = cli_names()


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download a dataset (MNIST, Fashion-MNIST, CIFAR-10, STL-10) and verify its checksums",
        description=(
            "Download a dataset's canonical files, verify their MD5 checksums, then load them once to check "
            "shapes and labels. Files already present and valid are not downloaded again. Without --dir, files "
            "go to $NEUROHEBB_DATA_DIR or ~/.cache/neurohebb/NAME, where `neurohebb train` finds them."
        ),
    )
    parser.add_argument("name", choices=NAMES, metavar="NAME", help=f"dataset: {', '.join(NAMES)}")
    parser.add_argument(
        "--dir", default=None, metavar="DIR",
        help="data directory (files go to DIR/NAME unless DIR is already named after the dataset)",
    )
    parser.add_argument(
        "--base-url", default=None, metavar="URL",
        help="fetch files from URL/<filename> instead of the official mirrors (also $NEUROHEBB_DOWNLOAD_BASE_URL)",
    )
    parser.add_argument("--check", action="store_true", help="download nothing; only check that the files present load")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data import download_dataset, download_root, load_dataset
    from ..data.loader import download_folder
    from ..data.registry import get_spec

    spec = get_spec(args.name)
    if spec.name == "digits":
        print(load_dataset("digits").summary())
        print("digits is bundled with scikit-learn; nothing to download")
        return 0
    if args.check:  # without --dir, check where `train` would look
        print(load_dataset(spec.name, args.dir).summary())
        return 0
    folder = download_folder(Path(args.dir) if args.dir else download_root(), spec)
    for path in download_dataset(spec.name, folder, base_url=args.base_url, progress=not args.no_progress):
        print(f"ok  {path}")
    print(load_dataset(spec.name, folder).summary())
    return 0
