"""Does the compiled linear step learn as well as torch's, or only as well as rounding allows?

Why: the compiled step (`hebbian.linear_kernel=compiled`) sums in another order, and over an epoch
the sharp soft WTA amplifies float32 rounding, so its trained weights differ from the torch
path's. To tell an error from that sensitivity, this script trains mnist-mlp end to end (Hebbian
epoch, features, readout, test accuracy: the pipeline `neurohebb train` runs) with the compiled
step, with torch's step, and with torch's step started from rounding-level perturbations of the
same initial weights, over several seeds, and prints each variant's accuracies with the paired
differences to torch's. `--trajectory N` also runs torch's epoch for seed 0 and, every N steps,
applies one compiled step to a copy of the same weights, printing how far the two steps land apart
(relative norm, and the share along torch's own update).

    python benchmarks/linear_kernel_accuracy.py [--seeds 0,1,2,3,4,5] [--variants compiled,torch,...]
        [--trajectory 300] [--data-dir DIR] [--json OUT]

Variants: compiled, torch, torch-up (initial W x (1 + 2^-22)), torch-down (x (1 - 2^-22)),
torch-one (W[0, 0] + 1e-6). Each run takes about as long as `train --preset mnist-mlp`.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurohebb.batches import TensorBatches  # noqa: E402
from neurohebb.config import resolve_config  # noqa: E402
from neurohebb.engine import (accuracy_from_features, extract_features, hebbian_phase, seeded_generators,  # noqa: E402
                              to_device_float, train_readout)
from neurohebb.network import HebbNetwork  # noqa: E402
from neurohebb.steps import Float32Step  # noqa: E402

VARIANTS = {  # name: (linear kernel, how the initial weights are perturbed)
    "compiled": ("compiled", None),
    "torch": ("torch", None),
    "torch-up": ("torch", lambda w: w.mul_(1 + 2.0 ** -22)),
    "torch-down": ("torch", lambda w: w.mul_(1 - 2.0 ** -22)),
    "torch-one": ("torch", lambda w: w[0, 0].add_(1e-6)),
}


def run(variant: str, seed: int, data) -> float:
    """Test accuracy (%) of mnist-mlp trained with `variant` and `seed`."""
    kernel, perturb = VARIANTS[variant]
    config = resolve_config("mnist-mlp", device="cpu", overrides=[f"seed={seed}"])
    init_gen, order_gen = seeded_generators(seed)
    net = HebbNetwork(config, generator=init_gen, step=Float32Step(linear_kernel=kernel))
    if perturb is not None:
        perturb(net.blocks[0].layer.weight)
    device = torch.device("cpu")
    x_train, y_train, x_test, y_test = data
    hebbian_phase(net, x_train, config, device, order_gen, progress=False)
    train_features = extract_features(net, x_train, device)
    test_features = extract_features(net, x_test, device)
    train_readout(net, train_features, y_train, config, order_gen, False)
    return float(accuracy_from_features(net, test_features, y_test))


def trajectory(every: int, x_train: torch.Tensor) -> list[dict[str, float]]:
    """Along torch's seed-0 epoch, one compiled step from the same weights every `every` steps."""
    config = resolve_config("mnist-mlp", device="cpu")
    init_gen, order_gen = seeded_generators(0)
    net = HebbNetwork(config, generator=init_gen, step=Float32Step(linear_kernel="torch"))
    layer = net.blocks[0].layer
    torch_step, compiled_step = Float32Step(linear_kernel="torch"), Float32Step(linear_kernel="compiled")
    probe = copy.deepcopy(layer)
    rows = []
    for i, batch in enumerate(TensorBatches(x_train, config.hebbian.batch_size, order_gen)):
        x = to_device_float(batch, torch.device("cpu"))
        if i % every:
            torch_step.step(layer, x)
            continue
        probe.weight.copy_(layer.weight)
        before = layer.weight.clone()
        compiled_step.step(probe, x)
        torch_step.step(layer, x)
        moved, gap = layer.weight - before, probe.weight - layer.weight
        rows.append({"step": i, "relative_difference": float(gap.norm() / moved.norm()),
                     "along_torch_update": float((gap * moved).sum() / moved.norm() ** 2)})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2,3,4,5")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of: " + ", ".join(VARIANTS))
    p.add_argument("--trajectory", type=int, default=0, metavar="N", help="also compare single steps every N steps (0: skip)")
    p.add_argument("--data-dir", default=None, help="where mnist lives (default: the project's data lookup)")
    p.add_argument("--json", metavar="OUT")
    args = p.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant {unknown[0]!r}; choose from: {', '.join(VARIANTS)}")
    from neurohebb.data import load_dataset

    ds = load_dataset("mnist", data_dir=args.data_dir)
    data = (torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train).long(),
            torch.from_numpy(ds.x_test), torch.from_numpy(ds.y_test).long())
    results: dict[str, list[float]] = {}
    for variant in variants:
        results[variant] = []
        for seed in seeds:
            start = time.perf_counter()
            results[variant].append(run(variant, seed, data))
            print(f"{variant:11s} seed {seed}: {results[variant][-1]:.2f} % ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\n{'variant':11s} {'mean':>7s} {'sd':>6s}  per seed ({', '.join(map(str, seeds))})  vs torch, seed by seed")
    summary = {}
    for variant, accs in results.items():
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        paired = [a - t for a, t in zip(accs, results["torch"])] if "torch" in results else []
        summary[variant] = {"accuracies": accs, "mean": statistics.mean(accs), "sd": sd, "minus_torch": paired}
        print(f"{variant:11s} {statistics.mean(accs):7.2f} {sd:6.2f}  {' '.join(f'{a:.2f}' for a in accs)}  "
              f"{' '.join(f'{d:+.2f}' for d in paired)}")
    out = {"seeds": seeds, "variants": summary}
    if args.trajectory:
        out["trajectory"] = trajectory(args.trajectory, data[0])
        rel = [r["relative_difference"] for r in out["trajectory"]]
        along = [r["along_torch_update"] for r in out["trajectory"]]
        print(f"\none compiled step vs torch's along torch's seed-0 epoch ({len(rel)} steps): relative difference "
              f"{min(rel):.2g}-{max(rel):.2g}; share along torch's update {min(along):+.2g} to {max(along):+.2g} "
              f"({sum(a < 0 for a in along)} negative)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
