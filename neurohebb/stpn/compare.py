"""Parameter-matched comparison of STPN, LSTM and RNN on one task: the STPN paper's table.

Why its own module: the comparison is a protocol (same data, seeds, epochs and parameter budget
for every unit; the STPN's B-bit state as an extra row), and its table is the deliverable.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from ..rundir import StagedRunDir, write_json_atomic, write_text_atomic
from .models import MODELS, matched_hidden, parameter_count
from .tasks import VOCAB_SIZE
from .training import STPNTrainConfig, train

COLUMNS = ("model", "hidden", "parameter_count", "state_format", "test_accuracy", "energy_per_sequence", "best_epoch", "epochs_run", "seconds")


def comparison_configs(base: STPNTrainConfig, models: Sequence[str], stpn_hidden: int) -> list[tuple[str, STPNTrainConfig]]:
    """(run name, config) per run: the STPN at `stpn_hidden`, the others at the hidden size whose
    parameter count is closest to it. Precision settings stay with the STPN; with a clamp and
    `state_bits` the STPN runs twice from scratch, float ("stpn") and quantised ("stpn-<B>bit")."""
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ConfigError(f"--models must list some of {', '.join(MODELS)}, got {','.join(models) or 'nothing'}")
    target = parameter_count("stpn", VOCAB_SIZE, stpn_hidden, VOCAB_SIZE)
    runs: list[tuple[str, STPNTrainConfig]] = []
    for model in models:
        if model == "stpn":
            cfg = dataclasses.replace(base, model="stpn", hidden=stpn_hidden)
            if cfg.state_bits is not None and cfg.clamp is not None:
                runs.append(("stpn", dataclasses.replace(cfg, state_bits=None, state_format=None, weight_format=None)))
                runs.append((f"stpn-{cfg.state_bits}bit", cfg))
            else:
                runs.append(("stpn", cfg))
        else:
            runs.append((model, dataclasses.replace(
                base, model=model, hidden=matched_hidden(model, target, VOCAB_SIZE, VOCAB_SIZE),
                clamp=None, state_bits=None, state_format=None, weight_format=None,
            )))
    for _, cfg in runs:
        cfg.validate()
    return runs


def rows_from_metrics(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows of one run: one row, or two for an STPN trained float then quantised."""
    row = {k: metrics.get(k) for k in COLUMNS}
    fmt = str(metrics["state_format"]).split(":")[0]
    if fmt != "float32":
        row["model"] = f"{metrics['model']} ({fmt} state)"
    if "float_test_accuracy" not in metrics:
        return [row]
    float_row = dict(row, model=metrics["model"], state_format="float32", test_accuracy=metrics["float_test_accuracy"],
                     energy_per_sequence=metrics["float_energy_per_sequence"], best_epoch=metrics["float_best_epoch"])
    return [float_row, row]


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the comparison (what the CLI prints and the note quotes)."""
    head = "| model | hidden | parameters | short-term state | test accuracy (%) | energy / sequence | best epoch | seconds |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['hidden']} | {r['parameter_count']} | {r['state_format'] or '-'} | "
            f"{r['test_accuracy']:.2f} | {r['energy_per_sequence']:.2f} | {r['best_epoch']} / {r['epochs_run']} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def run_comparison(
    base: STPNTrainConfig, out_dir: str | Path, *, models: Sequence[str] = MODELS, stpn_hidden: int = 11,
    progress: bool = True, overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Train every run into OUT/<run name>/ and write comparison.{json,csv,md,png} to OUT."""
    from .plots import plot_learning_curves

    runs = comparison_configs(base, models, stpn_hidden)
    rows: list[dict[str, Any]] = []
    histories: dict[str, list] = {}
    with StagedRunDir(out_dir, overwrite=overwrite) as staging:
        for name, cfg in runs:
            _, metrics = train(cfg, staging / name, progress=progress)
            print(f"{name}: hidden {metrics['hidden']}, {metrics['parameter_count']} parameters, "
                  f"test accuracy {metrics['test_accuracy']:.2f} %", flush=True)
            rows.extend(rows_from_metrics(metrics))
            histories[f"{name} (H={metrics['hidden']}, {metrics['parameter_count']} params)"] = metrics["history"]
        write_json_atomic(staging / "comparison.json", {"rows": rows, "base_config": base.to_dict(), "stpn_hidden": stpn_hidden})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(staging / "comparison.csv", buf.getvalue())
        write_text_atomic(staging / "comparison.md", format_table(rows) + "\n")
        plot_learning_curves(histories, staging / "comparison.png", f"{base.task}: {base.train_size} training sequences")
    return rows
