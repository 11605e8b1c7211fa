"""A/B timing of two checkouts of neurohebb in ONE process, alternating, with medians.

Why: on a shared machine absolute timings drift with other people's load; old and new code
timed alternately in the same process see the same load, so their ratio is meaningful. Both
packages are imported once; before each timed run the right one is installed in
``sys.modules`` (functions that import lazily then resolve to the same checkout).

    git worktree add /tmp/nh-old main      # or: git archive main | tar -x -C /tmp/nh-old
    python benchmarks/ab_steps.py --old /tmp/nh-old [--new .] [--rounds 5] [--images 2000]
        [--what float32,fake-quant,readout]

Rows: the mnist-mlp Hebbian epoch on the first N training images (batch 10) in float32 and
through the fake-quant engine as `train --precision` runs it (stats every 10th step), the
readout on synthetic cached features (default 4096 x 24,576 float32: cifar10's width), and the
cifar10 Hebbian phase on a few images. Prints ``uptime`` before and after.
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

POLICY = "weight=m8:stochastic,update=s16.14:stochastic"


def load_package(root: Path) -> dict[str, object]:
    """Import neurohebb from `root`; return its modules (and remove them from sys.modules)."""
    for name in [m for m in sys.modules if m == "neurohebb" or m.startswith("neurohebb.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        for mod in ("neurohebb", "neurohebb.config", "neurohebb.engine", "neurohebb.network", "neurohebb.steps",
                    "neurohebb.steps.fakequant", "neurohebb.steps.float32", "neurohebb.precision.policy",
                    "neurohebb.readout", "neurohebb.data"):
            importlib.import_module(mod)
    finally:
        sys.path.remove(str(root))
    mods = {m: sys.modules[m] for m in sys.modules if m == "neurohebb" or m.startswith("neurohebb.")}
    for name in mods:
        del sys.modules[name]
    return mods


def install(mods: dict[str, object]) -> None:
    for name in [m for m in sys.modules if m == "neurohebb" or m.startswith("neurohebb.")]:
        del sys.modules[name]
    sys.modules.update(mods)


def hebbian_seconds(mods, preset: str, x: torch.Tensor, policy: str | None, blocks: int | None = None) -> tuple[float, torch.Tensor]:
    config = mods["neurohebb.config"].resolve_config(preset, device="cpu")
    engine = mods["neurohebb.engine"]
    init_gen, order_gen = engine.seeded_generators(0)
    step = mods["neurohebb.steps"].make_step(policy, "fake-quant", seed=0, stats_every=10) if policy else None
    net = mods["neurohebb.network"].HebbNetwork(config, generator=init_gen, step=step)
    if blocks is not None:
        net.blocks = net.blocks[:blocks]
    seconds = engine.hebbian_phase(net, x, config, torch.device("cpu"), order_gen, progress=False)
    return seconds, net.blocks[-1].layer.weight.clone()


def features_seconds(mods, preset: str, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    config = mods["neurohebb.config"].resolve_config(preset, device="cpu")
    engine = mods["neurohebb.engine"]
    init_gen, _ = engine.seeded_generators(0)
    net = mods["neurohebb.network"].HebbNetwork(config, generator=init_gen)
    start = time.perf_counter()
    feats = engine.extract_features(net, x, torch.device("cpu"))
    return time.perf_counter() - start, feats


def readout_seconds(mods, feats: torch.Tensor, labels: torch.Tensor, epochs: int) -> tuple[float, torch.Tensor]:
    config = mods["neurohebb.config"].resolve_config("cifar10", device="cpu", overrides=[f"readout.epochs={epochs}"])
    engine = mods["neurohebb.engine"]
    torch.manual_seed(0)  # dropout draws from the global generator
    readout = torch.nn.Linear(feats.shape[1], 10)
    torch.nn.init.zeros_(readout.weight)

    class Net(torch.nn.Module):  # just what train_readout touches
        def __init__(self):
            super().__init__()
            self.readout = readout

    result = engine.train_readout(Net(), feats, labels, config, torch.Generator().manual_seed(1), progress=False)
    return result.seconds, readout.weight.detach().clone()


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "(no uptime)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", required=True, help="root of the old checkout")
    p.add_argument("--new", default=str(Path(__file__).resolve().parents[1]), help="root of the new checkout (default: this one)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--images", type=int, default=2000, help="mnist-mlp training images per Hebbian run")
    p.add_argument("--what", default="float32,fake-quant", help="rows: float32, fake-quant, readout, cifar10")
    p.add_argument("--policy", default=POLICY)
    p.add_argument("--feature-rows", type=int, default=4096)
    p.add_argument("--cifar-images", type=int, default=100)
    args = p.parse_args()

    print("before:", uptime())
    print(f"threads {torch.get_num_threads()}, torch {torch.__version__}")
    old, new = load_package(Path(args.old)), load_package(Path(args.new))
    install(new)
    from neurohebb.data import load_dataset

    x = torch.from_numpy(load_dataset("mnist", train_subset=args.images).x_train)
    rows = [w.strip() for w in args.what.split(",") if w.strip()]
    jobs = {}
    if "float32" in rows:
        jobs["mnist-mlp float32"] = lambda m: hebbian_seconds(m, "mnist-mlp", x, None)
    if "fake-quant" in rows:
        jobs["mnist-mlp fake-quant"] = lambda m: hebbian_seconds(m, "mnist-mlp", x, args.policy)
    if "cifar10" in rows:
        xc = torch.from_numpy(load_dataset("cifar10", train_subset=args.cifar_images).x_train)
        jobs[f"cifar10 hebbian ({args.cifar_images} img)"] = lambda m: hebbian_seconds(m, "cifar10", xc, None)
        jobs[f"cifar10 features ({args.cifar_images} img)"] = lambda m: features_seconds(m, "cifar10", xc)
    if "readout" in rows:
        g = torch.Generator().manual_seed(0)
        feats = torch.rand(args.feature_rows, 24576, generator=g)
        labels = torch.randint(0, 10, (args.feature_rows,), generator=g)
        jobs[f"readout 2 epochs ({args.feature_rows} x 24576)"] = lambda m: readout_seconds(m, feats, labels, 2)
    times = {(name, side): [] for name in jobs for side in ("old", "new")}
    same = {name: True for name in jobs}
    for r in range(args.rounds):
        for name, job in jobs.items():
            order = (("old", old), ("new", new)) if r % 2 == 0 else (("new", new), ("old", old))
            results = {}
            for side, mods in order:
                install(mods)
                seconds, w = job(mods)
                times[name, side].append(seconds)
                results[side] = w
            same[name] &= torch.equal(results["old"], results["new"])
    install(new)
    print(f"{'row':44s} {'old med s':>10s} {'new med s':>10s} {'new/old':>8s} {'old min':>8s} {'new min':>8s}  result")
    for name in jobs:
        o, n = statistics.median(times[name, "old"]), statistics.median(times[name, "new"])
        print(f"{name:44s} {o:10.3f} {n:10.3f} {n / o:8.3f} {min(times[name, 'old']):8.3f} "
              f"{min(times[name, 'new']):8.3f}  {'identical' if same[name] else 'DIFFERS'}")
    print("after:", uptime())
    return 0


if __name__ == "__main__":
    sys.exit(main())
