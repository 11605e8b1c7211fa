"""`neurohebb train`: Hebbian phase, readout, evaluation, run directory."""
from __future__ import annotations

import argparse

from ._common import add_config_arguments, add_precision_arguments, config_from_args, default_run_dir, print_metrics


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a soft-WTA Hebbian network and its readout",
                              description="Train a preset (or a TOML config) and write RUN_DIR with metrics.json, config.toml, checkpoint.pt and receptive_fields.png.")
    add_config_arguments(p)
    add_precision_arguments(p)
    p.add_argument("--on-chip", metavar="CHIP", dest="on_chip",
                   help="learn with the chip's own learning engine (batch 1, spiking WTA circuit, the chip's number formats), "
                        "e.g. loihi2 or loihi; the same as [onchip] chip = ... in --config")
    p.add_argument("--rule", metavar="NAME|RULE", help="with --on-chip: a variant of neurohebb/onchip/rules.toml "
                   "(default: the preset's [onchip] rule, else harmonic-homeostasis) or a rule string such as '2^-2 * x1 * y0 - 2^-5 * w * y0'")
    p.add_argument("--control", action="store_true",
                   help="also train the readout on the same network untrained (its initial weights) and record that accuracy "
                        "and the learning gain in metrics.json (costs a second features + readout pass)")
    p.add_argument("-o", "--out", metavar="RUN_DIR", help="run directory to create (default runs/<preset>-s<seed>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing RUN_DIR once the new run has finished")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine import train
    from ..sizes import check_fits_in_memory

    import json

    if args.rule and not args.on_chip:
        from ..errors import ConfigError

        raise ConfigError("--rule picks an on-chip learning rule; give --on-chip CHIP as well (e.g. --on-chip loihi2)")
    if args.on_chip:
        args.overrides = list(args.overrides or []) + [f"onchip.chip={json.dumps(args.on_chip)}"]
        if args.rule:
            args.overrides.append(f"onchip.rule={json.dumps(args.rule)}")
    config = config_from_args(args)
    check_fits_in_memory(config)  # before the data is loaded
    out = args.out or default_run_dir(config.preset, config.seed)
    _, metrics = train(config, out, progress=not args.no_progress, overwrite=args.overwrite, control=args.control)
    print_metrics(metrics, keys=("test_accuracy", "random_weights_test_accuracy", "learning_gain", "unsup_seconds",
                                 "readout_seconds", "total_seconds", "device"))
    print(f"run written to {out}")
    return 0
