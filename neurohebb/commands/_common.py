"""Argument groups shared by commands that build a network from a preset."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str | None = None) -> None:
    from ..config import preset_names

    parser.add_argument("--preset", default=default_preset, metavar="PRESET",
                        help="network preset: " + ", ".join(preset_names()) + (f" (default {default_preset})" if default_preset else ""))
    parser.add_argument("--config", metavar="FILE.toml", help="TOML file overriding preset fields (same layout as the presets)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one field, e.g. --set hebbian.batch_size=32 --set layers.0.lr=0.05 (repeatable)")
    parser.add_argument("--data-dir", metavar="DIR", help="dataset folder (IDX, CIFAR, or NumPy shards with MANIFEST.json)")
    parser.add_argument("--device", choices=None, metavar="auto|cpu|cuda[:N]", help="where to train (default auto)")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--train-subset", type=int, metavar="N", help="use only the first N training images")
    parser.add_argument("--test-subset", type=int, metavar="N", help="use only the first N test images")


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    """--precision / --precision-mode: shorthand for the run's [precision] table."""
    parser.add_argument("--precision", metavar="POLICY",
                        help="train the Hebbian phase in a chip's number formats (SoftHebb's own algorithm, quantised; "
                             "not the chip's learning engine), e.g. 'weight=m8:stochastic,update=s16.14:stochastic', "
                             "or a TOML file with a [precision] table; the same as [precision] in --config (default float32)")
    parser.add_argument("--precision-mode", choices=("fake-quant", "integer"), default=None,
                        help="fake-quant (exact float64 values, fast; default) or integer (bit-exact int64 engine); they agree exactly")


def precision_arg(text: str, flag: str) -> dict:
    """A [precision] table from a CLI value: a policy string, or a TOML file holding one.

    The one parser of --precision (train, feasibility) and --policy (sweep)."""
    from ..config import load_toml_dict, precision_table
    from ..errors import ConfigError

    if text.endswith(".toml"):
        if not Path(text).is_file():
            raise ConfigError(f"{flag} {text}: file not found; give a TOML file or a policy string")
        data = load_toml_dict(text)
        return precision_table(data.get("precision", data))
    if not [item for item in text.split(",") if item.strip()]:
        raise ConfigError(f"{flag} {text!r} is empty; give float32 or a policy such as 'weight=m8:stochastic'")
    return {"policy": text}


def precision_overrides(args: argparse.Namespace) -> dict:
    """The [precision] table that --precision / --precision-mode stand for (empty when absent)."""
    text = getattr(args, "precision", None)
    table = precision_arg(text, "--precision") if text is not None else {}
    if getattr(args, "precision_mode", None):
        table["mode"] = args.precision_mode
    return table


def config_from_args(args: argparse.Namespace):
    from ..config import resolve_config
    from ..errors import ConfigError

    if not args.preset and not args.config:
        raise ConfigError("give --preset NAME or --config FILE.toml")
    return resolve_config(
        args.preset,
        args.config,
        args.overrides,
        precision=precision_overrides(args) or None,
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
