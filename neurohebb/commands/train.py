"""`neurohebb train`: Hebbian phase, readout, evaluation, run directory."""
from __future__ import annotations

import argparse

from ._common import add_config_arguments, config_from_args, default_run_dir, print_metrics


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a soft-WTA Hebbian network and its readout",
                              description="Train a preset (or a TOML config) and write RUN_DIR with metrics.json, config.toml, checkpoint.pt and receptive_fields.png.")
    add_config_arguments(p)
    p.add_argument("--out", metavar="RUN_DIR", help="run directory to create (default runs/<preset>-s<seed>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing RUN_DIR once the new run has finished")
    p.add_argument("--precision", metavar="POLICY",
                   help="train the Hebbian phase under a chip's arithmetic, e.g. 'weight=m8:stochastic,update=s16.14:stochastic' "
                        "or a TOML file with a [precision] table (default float32); metrics.json gets its diagnostics")
    p.add_argument("--precision-mode", choices=("fake-quant", "integer"), default="fake-quant",
                   help="fake-quant (exact float64 values, fast) or integer (bit-exact int64 engine); they agree exactly")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import train
    from ..sizes import check_fits_in_memory

    config = config_from_args(args)
    check_fits_in_memory(config)  # before the data is loaded
    out = args.out or default_run_dir(config.preset, config.seed)
    if args.precision is not None:
        metrics = _train_with_precision(args, config, out)
    else:
        _, metrics = train(config, out, progress=not args.no_progress, overwrite=args.overwrite)
    print_metrics(metrics)
    print(f"run written to {out}")
    return 0


def _train_with_precision(args: argparse.Namespace, config, out) -> dict:
    from ..engine import write_run
    from ..precision.training import train_with_policy
    from ..rundir import StagedRunDir
    from ._common import policy_from_arg

    policy = policy_from_arg(args.precision, "--precision")
    with StagedRunDir(out, overwrite=args.overwrite, kind="train") as staging:
        net, metrics = train_with_policy(config, policy, mode=args.precision_mode, progress=not args.no_progress)
        write_run(staging, config, net, metrics)
    return metrics
