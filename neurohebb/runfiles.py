"""Reload a run directory and check its files against each other.

Why: a run directory holds the network twice -- in `config.toml` (for people and tools to read)
and inside `checkpoint.pt` (with the weights). If someone edits one, evaluating with the other
would give a shape traceback or, worse, silently evaluate a different network than the one the
user reads about. The checkpoint's copy built the weights, so it is authoritative; only fields
that choose *how to evaluate* (device, data folder, test subset) may differ.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import RunConfig, config_from_dict, load_toml_dict
from .errors import NeurohebbError

# Fields of config.toml that say how to run an evaluation, not which network was trained.
EVAL_TIME_FIELDS = ("device", "data.data_dir", "data.download", "data.test_subset", "data.train_subset")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
        out = {f"{prefix}count": len(data)}
        for i, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: data}


def config_differences(file_config: RunConfig, checkpoint_config: RunConfig) -> list[tuple[str, Any, Any]]:
    """(field, value in config.toml, value in the checkpoint) for every field that matters."""
    a, b = _flatten(file_config.to_dict()), _flatten(checkpoint_config.to_dict())
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in EVAL_TIME_FIELDS or key == "preset":
            continue
        if a.get(key) != b.get(key):
            diffs.append((key, a.get(key), b.get(key)))
    return diffs


def load_run(run_dir: str | Path, device: Any = "cpu"):
    """(config, network) of a run directory, after checking config.toml against the checkpoint.

    The returned config is the checkpoint's, with the evaluation-time fields of config.toml.
    """
    import dataclasses

    from .network import load_checkpoint

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NeurohebbError(f"run directory {run_dir} not found; train one with `neurohebb train --out {run_dir}`")
    config_path = run_dir / "config.toml"
    if not config_path.is_file():
        raise NeurohebbError(f"{run_dir} has no config.toml; it is not a complete neurohebb run directory")
    file_config = config_from_dict(load_toml_dict(config_path))
    net = load_checkpoint(run_dir / "checkpoint.pt", map_location=device)
    diffs = config_differences(file_config, net.config)
    if diffs:
        key, in_file, in_checkpoint = diffs[0]
        more = f" (and {len(diffs) - 1} more field(s))" if len(diffs) > 1 else ""
        key = key.replace(".count", "") + (" (number of layers)" if key.endswith(".count") else "")
        raise NeurohebbError(f"{config_path} does not match {run_dir / 'checkpoint.pt'}: {key} is {in_file!r} in config.toml but "
                             f"{in_checkpoint!r} in the checkpoint{more}; undo the edit, or retrain with `neurohebb train --config`")
    ckpt = net.config
    config = dataclasses.replace(ckpt, device=file_config.device,
                                 data=dataclasses.replace(ckpt.data, data_dir=file_config.data.data_dir,
                                                          download=file_config.data.download,
                                                          test_subset=file_config.data.test_subset,
                                                          train_subset=file_config.data.train_subset))
    net.config = config
    return config, net
