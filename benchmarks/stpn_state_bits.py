"""Accuracy of a trained STPN with its short-term state rounded to B bits (no retraining).

For each bit width the fractional bits follow from the run's clamp (`format_for_clamp`) or, without
one, from the state's range on the validation set (`format_for_range`); then the test set is
evaluated with the state rounded after every step. Compare with a run trained through the rounded
state (`neurohebb stpn train --clamp C --state-bits B`) to see what training through it recovers.
Prints a Markdown table; writes it as JSON with --json.

    python benchmarks/stpn_state_bits.py RUN_DIR [--bits 4 6 8 10 12] [--rounding nearest stochastic]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurohebb.stpn.layer import STPN  # noqa: E402
from neurohebb.stpn.precision import STPNPrecision, format_for_clamp, format_for_range  # noqa: E402
from neurohebb.stpn.tasks import make_splits  # noqa: E402
from neurohebb.stpn.training import evaluate, load_run, observe_state_range  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a float-trained STPN run (neurohebb stpn train --out RUN_DIR)")
    parser.add_argument("--bits", type=int, nargs="+", default=[4, 5, 6, 7, 8, 10, 12])
    parser.add_argument("--rounding", nargs="+", default=["nearest", "stochastic"])
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)

    cfg, model = load_run(args.run_dir)
    unit = model.recurrent
    if not isinstance(unit, STPN):
        parser.error(f"{args.run_dir} is not an STPN run")
    unit.quantizer = None
    data = make_splits(cfg.data_seed, train_size=1, val_size=cfg.val_size, test_size=cfg.test_size, n_pairs=cfg.n_pairs)
    max_abs = observe_state_range(model, data.x_val)
    float_acc, _ = evaluate(model, data.x_test, data.y_test)
    rows = [{"bits": "float32", "format": "float32", "rounding": "-", "test_accuracy": float_acc}]
    for bits in args.bits:
        fmt = format_for_clamp(cfg.clamp, bits) if cfg.clamp is not None else format_for_range(max_abs, bits)
        for rounding in args.rounding:
            unit.quantizer = STPNPrecision(state=f"{fmt}:{rounding}", seed=cfg.seed)
            acc, _ = evaluate(model, data.x_test, data.y_test)
            rows.append({"bits": bits, "format": str(fmt), "rounding": rounding, "test_accuracy": acc})
    print(f"run {args.run_dir}: max |F| on validation = {max_abs:.4f}")
    print("| state bits | format | rounding | test accuracy (%) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['bits']} | {r['format']} | {r['rounding']} | {r['test_accuracy']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"run_dir": args.run_dir, "state_max_abs": max_abs, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
