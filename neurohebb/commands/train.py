"""`neurohebb train`: Hebbian phase, readout, evaluation, run directory."""
from __future__ import annotations

import argparse

from ._common import add_config_arguments, add_precision_arguments, config_from_args, default_run_dir, print_metrics


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a soft-WTA Hebbian network and its readout",
                              description="Train a preset (or a TOML config) and write RUN_DIR with metrics.json, config.toml, checkpoint.pt and receptive_fields.png.")
    add_config_arguments(p)
    add_precision_arguments(p)
    p.add_argument("--out", metavar="RUN_DIR", help="run directory to create (default runs/<preset>-s<seed>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing RUN_DIR once the new run has finished")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import train
    from ..sizes import check_fits_in_memory

    config = config_from_args(args)
    check_fits_in_memory(config)  # before the data is loaded
    out = args.out or default_run_dir(config.preset, config.seed)
    _, metrics = train(config, out, progress=not args.no_progress, overwrite=args.overwrite)
    print_metrics(metrics)
    print(f"run written to {out}")
    return 0
