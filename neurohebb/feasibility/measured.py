"""What a run directory measured, for the feasibility report: the on-chip accuracy and its control.

Why separate from the analysis: the analysis predicts (mapping, expressibility, cost); this states
what was *measured* by training with the chip's own learning engine (`train --on-chip`), beside
the random-weights control that says whether anything was learned. A run trained any other way
(float SoftHebb, or SoftHebb in a chip's number formats) has no on-chip accuracy, and the report
says so instead of passing its accuracy off as the chip's.

Where the control comes from, first found: the run's metrics.json key
``random_weights_test_accuracy``; else ``--control RUN_DIR``, a run of the same network whose
layer kept its random weights (``layers.0.rule = "random"``); else it is "not measured".
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError

CONTROL_KEY = "random_weights_test_accuracy"


def _metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} has no metrics.json; give a run directory written by `neurohebb train`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read as JSON ({type(exc).__name__}); retrain the run or restore the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a metrics object; retrain the run or restore the file")
    return data


def _accuracy(data: dict[str, Any], key: str, path: Path) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ConfigError(f"{path}: {key} must be a percentage in 0..100, got {value!r}")
    return float(value)


def _control_from(control_dir: Path, config) -> dict[str, Any]:
    """metrics.json of a random-weights run of the same network and data (checked)."""
    from ..config import config_from_dict, load_toml_dict

    path = control_dir / "config.toml"
    if not path.is_file():
        raise ConfigError(f"--control {control_dir} has no config.toml; give a run directory written by `neurohebb train`")
    control = config_from_dict(load_toml_dict(path))
    if any(layer.rule != "random" for layer in control.layers) and control.hebbian.epochs > 0:
        raise ConfigError(f"--control {control_dir} trained its layers (rule {control.layers[0].rule}); a random-weights "
                          "control is trained with --set layers.0.rule=\"random\"")
    ours = [(l.kind, l.out_channels) for l in config.layers]
    theirs = [(l.kind, l.out_channels) for l in control.layers]
    if ours != theirs or control.data.dataset != config.data.dataset:
        raise ConfigError(f"--control {control_dir} is another network or dataset ({control.data.dataset}, layers {theirs}) "
                          f"than the run ({config.data.dataset}, layers {ours}); train the control with the run's preset")
    metrics = _metrics(control_dir)
    return metrics


def _control_accuracy(control_dir: Path, config, n_test: Any) -> float:
    metrics = _control_from(control_dir, config)
    if n_test is not None and metrics.get("n_test") is not None and metrics["n_test"] != n_test:
        raise ConfigError(f"--control {control_dir} was tested on {metrics['n_test']} images, the run on {n_test}; "
                          "train the control with the run's data.test_subset")
    value = _accuracy(metrics, "test_accuracy", control_dir / "metrics.json")
    if value is None:
        raise ConfigError(f"{control_dir / 'metrics.json'} has no test_accuracy; retrain the control run")
    return value


def measured_accuracy(run_dir: str | Path, config, control_dir: str | Path | None = None) -> dict[str, Any]:
    """The measured section of the report for a run directory (see the module docstring)."""
    run_dir = Path(run_dir)
    # a checkpoint without metrics (e.g. written by hand) measured nothing: reported as such
    metrics = _metrics(run_dir) if (run_dir / "metrics.json").exists() else {}
    mode = str(metrics.get("mode", "float32"))
    accuracy = _accuracy(metrics, "test_accuracy", run_dir / "metrics.json")
    on_chip = mode.startswith("chip:")
    control, control_source = _accuracy(metrics, CONTROL_KEY, run_dir / "metrics.json"), "metrics.json"
    if control is None and control_dir is not None:
        control, control_source = _control_accuracy(Path(control_dir), config, metrics.get("n_test")), str(control_dir)
    out: dict[str, Any] = {"run_dir": str(run_dir), "mode": mode, "on_chip": on_chip,
                           "test_accuracy": accuracy, "n_test": metrics.get("n_test"), "n_train": metrics.get("n_train"),
                           "random_weights_test_accuracy": control,
                           "control_source": control_source if control is not None else None}
    if on_chip:
        diag = (metrics.get("diagnostics") or [{}])[0]
        out.update(chip=mode.split(":", 1)[1], rule_name=diag.get("rule_name"), rule=diag.get("rule"),
                   active_neurons=diag.get("active_neurons"))
    if accuracy is not None and control is not None:
        out["learning_gain"] = round(accuracy - control, 4)
    return out


def render_measured(m: dict[str, Any]) -> str:
    """The measured section as text (a few lines)."""
    if m["test_accuracy"] is None:
        acc = "not measured (the run has no metrics.json test_accuracy)"
    else:
        acc = f"{m['test_accuracy']:.2f} % on {m.get('n_test') or '?'} test images"
    if m["on_chip"]:
        lines = [f"Measured on-chip learning ({m['chip']}, rule {m.get('rule_name')}: {m.get('rule')}), "
                 f"{m.get('n_train') or '?'} training samples: test accuracy {acc}"]
        if m.get("active_neurons") is not None:
            lines.append(f"  neurons that ever won: {m['active_neurons']}")
    else:
        lines = [f"Measured on-chip accuracy: not measured -- this run trained in mode {m['mode']!r}, not with a chip's "
                 f"learning engine (train with --on-chip CHIP to measure it); its own test accuracy: {acc}"]
    if m["random_weights_test_accuracy"] is None:
        lines.append("  random-weights control: not measured (train one with --set layers.0.rule=\"random\" and give --control RUN_DIR)")
    else:
        gain = f", learning gain {m['learning_gain']:+.2f} points" if "learning_gain" in m else ""
        lines.append(f"  random-weights control: {m['random_weights_test_accuracy']:.2f} % (from {m['control_source']}){gain}")
    return "\n".join(lines) + "\n"
