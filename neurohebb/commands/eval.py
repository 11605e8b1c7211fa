"""`neurohebb eval RUN_DIR`: re-evaluate a saved run on its test set."""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a trained run directory on the test set",
                              description="Reload RUN_DIR's checkpoint, evaluate it on the test split and write RUN_DIR/eval.json.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder, if different from the one used for training")
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import torch

    from ..data import load_dataset
    from ..devices import resolve_device
    from ..engine import evaluate, load_run
    from ..rundir import check_writable_dir, write_json_atomic

    device = resolve_device(args.device)
    config, net = load_run(args.run_dir, device)
    # eval.json goes there: fail before the evaluation, not after it
    check_writable_dir(args.run_dir, "eval writes RUN_DIR/eval.json: make the folder writable, or copy the run somewhere writable")
    dc = config.data
    dataset = load_dataset(dc.dataset, args.data_dir or dc.data_dir, test_subset=dc.test_subset)
    t0 = time.perf_counter()
    if getattr(dataset, "streaming", False) or net.feature_size >= 100_000:  # ImageNet / STL-10: batch by batch
        from ..streaming import evaluate_dataset

        acc, n_test = evaluate_dataset(net, dataset, device, dc.workers)
    else:
        acc, n_test = evaluate(net, torch.from_numpy(dataset.x_test), torch.from_numpy(dataset.y_test), device), len(dataset.y_test)
    result = {"test_accuracy": round(acc, 4), "n_test": int(n_test), "device": str(device),
              "eval_seconds": round(time.perf_counter() - t0, 3), "dataset": dataset.name}
    write_json_atomic(Path(args.run_dir) / "eval.json", result)
    print(json.dumps(result, indent=2))
    return 0
