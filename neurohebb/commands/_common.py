"""Argument groups shared by commands that build a network from a preset."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str | None = None) -> None:
    parser.add_argument("--preset", default=default_preset, help="network preset: cifar10, mnist, mnist-mlp, digits" + (f" (default {default_preset})" if default_preset else ""))
    parser.add_argument("--config", metavar="FILE.toml", help="TOML file overriding preset fields (same layout as the presets)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one field, e.g. --set hebbian.batch_size=32 --set layers.0.lr=0.05 (repeatable)")
    parser.add_argument("--data-dir", metavar="DIR", help="dataset folder (IDX, CIFAR, or NumPy shards with MANIFEST.json)")
    parser.add_argument("--device", choices=None, metavar="auto|cpu|cuda[:N]", help="where to train (default auto)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--train-subset", type=int, metavar="N", help="use only the first N training images")
    parser.add_argument("--test-subset", type=int, metavar="N", help="use only the first N test images")


def config_from_args(args: argparse.Namespace):
    from ..config import resolve_config
    from ..errors import ConfigError

    if not args.preset and not args.config:
        raise ConfigError("give --preset NAME or --config FILE.toml")
    return resolve_config(
        args.preset,
        args.config,
        args.overrides,
        seed=args.seed,
        device=args.device,
        data__data_dir=args.data_dir,
        data__train_subset=args.train_subset,
        data__test_subset=args.test_subset,
    )


def default_run_dir(preset: str, seed: int) -> Path:
    return Path("runs") / f"{preset}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def print_metrics(metrics: dict, keys=("test_accuracy", "unsup_seconds", "readout_seconds", "total_seconds", "device")) -> None:
    print(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=2))


# Roles that hold signed values in every rule: an unsigned format would clip half of them to 0.
SIGNED_ROLES = ("weight", "update")


def policy_from_arg(text: str, flag: str):
    """A precision policy from a CLI value: a policy string, or a TOML file with [precision].

    Checked in full here, before any data is loaded or any step trained: an empty value is an
    error (not a silent float32), and signed roles need signed formats.
    """
    from pathlib import Path

    from ..errors import ConfigError
    from ..precision import PrecisionPolicy

    if not [item for item in text.split(",") if item.strip()]:
        raise ConfigError(f"{flag} {text!r} is empty; give a policy such as 'weight=s8.7' (or 'float32'), or leave {flag} out")
    if text.strip().endswith(".toml"):
        if not Path(text).is_file():
            raise ConfigError(f"{flag} {text}: file not found; give a TOML file or a policy string")
        policy = PrecisionPolicy.from_toml(text)
    else:
        policy = PrecisionPolicy.parse(text)
    for role in SIGNED_ROLES:
        fmt = policy.spec(role).fmt
        if not fmt.is_float and not fmt.signed:
            signed = f"m{fmt.bits}" if fmt.kind == "shared_exp" else f"s{fmt.bits}.{max(fmt.bits - 1, 0)}"
            raise ConfigError(f"{flag}: {role}={fmt} is unsigned, but {role}s are signed (SoftHebb learns negative weights); "
                              f"use a signed format such as {role}={signed}")
    return policy
