"""How close is the readout epoch on cached features to its floor? One run, same machine.

The readout of `cifar10` trains a 24,576 -> 10 linear map for 50 epochs on cached features
(50,000 x 24,576 float32, 4.9 GB). Per batch of 64 it cannot avoid gathering the batch's rows and
two skinny products (logits and the weight gradient): that is the floor row, timed alone. The
engine row is `engine.train_readout` with the preset's recipe (Adam, dropout 1/2); the third row
is the torch step (`readout.kernel="torch"`) where the compiled one runs, with the largest weight
difference between the two (same seeds and dropout masks); the last is the torch step with
torch's `F.dropout` mask (`bernoulli_`), the readout before this benchmark existed. Features are random (the cost does not depend on their values), so no
Hebbian run is needed.

    python benchmarks/cpu_readout_epoch.py [--rows 50000] [--width 24576] [--epochs 2] [--repeats 3] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurohebb import readout as readout_module  # noqa: E402
from neurohebb.memory import add_allocator_flag, apply_allocator_flag  # noqa: E402
from neurohebb.config import resolve_config  # noqa: E402
from neurohebb.engine import train_readout  # noqa: E402


class _Net(nn.Module):
    """Just the readout: `train_readout` touches nothing else of a network."""

    def __init__(self, width: int, classes: int) -> None:
        super().__init__()
        self.readout = nn.Linear(width, classes)


def floor_epoch(features: torch.Tensor, labels: torch.Tensor, batch: int, gen: torch.Generator) -> float:
    """Gather + logits product + gradient product per batch, nothing else."""
    n, width = features.shape
    w = torch.randn(10, width)
    g = torch.randn(batch, 10)
    buffer = torch.empty(batch, width)
    start = time.perf_counter()
    order = torch.randperm(n, generator=gen)
    for s in range(0, n, batch):
        idx = order[s:s + batch]
        xb = torch.index_select(features, 0, idx, out=buffer[: idx.numel()])
        torch.mm(w, xb.t())
        torch.mm(g[: idx.numel()].t(), xb)
    return time.perf_counter() - start


def engine_epochs(features: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int, torch_dropout: bool,
                  kernel: str = "auto") -> tuple[float, torch.Tensor]:
    """Seconds per epoch of `engine.train_readout` and the weight it trained."""
    config = resolve_config("cifar10", overrides=[f"readout.epochs={epochs}", f'readout.kernel="{kernel}"'], device="cpu")
    torch.manual_seed(seed)
    net = _Net(features.shape[1], 10)
    original = readout_module.apply_dropout
    if torch_dropout:
        readout_module.apply_dropout = lambda x, p, generator=None, out=None: F.dropout(x, p, training=True)
    try:
        result = train_readout(net, features, labels, config, torch.Generator().manual_seed(seed), progress=False)
    finally:
        readout_module.apply_dropout = original
    return result.seconds / epochs, net.readout.weight.detach().clone()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=50000, help="cached feature rows (cifar10: 50,000)")
    p.add_argument("--width", type=int, default=24576, help="feature width (cifar10: 24,576)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per engine measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-torch-dropout", action="store_true", help="leave out the bernoulli_ row (slow)")
    p.add_argument("--json", metavar="OUT")
    add_allocator_flag(p)
    args = p.parse_args()
    apply_allocator_flag(args)

    gen = torch.Generator().manual_seed(0)
    features = torch.rand(args.rows, args.width, generator=gen)
    labels = torch.randint(0, 10, (args.rows,), generator=gen)
    batch = resolve_config("cifar10").readout.batch_size
    compiled = readout_module.compiled_unavailable_reason(_Net(1, 10).readout) is None
    engine_row = f"readout epoch (engine, {'compiled' if compiled else 'torch'} step)"
    rows: dict[str, list[float]] = {"floor: gather + 2 products": [], engine_row: []}
    if compiled:
        rows["readout epoch (engine, torch step)"] = []
    if not args.skip_torch_dropout:
        rows["readout epoch, torch step + dropout mask"] = []
    max_diff = 0.0
    for r in range(args.repeats):
        rows["floor: gather + 2 products"].append(floor_epoch(features, labels, batch, gen))
        seconds, weight = engine_epochs(features, labels, args.epochs, r, False)
        rows[engine_row].append(seconds)
        if compiled:
            seconds, torch_weight = engine_epochs(features, labels, args.epochs, r, False, "torch")
            rows["readout epoch (engine, torch step)"].append(seconds)
            max_diff = max(max_diff, float((weight - torch_weight).abs().max()))
        if not args.skip_torch_dropout:
            rows["readout epoch, torch step + dropout mask"].append(engine_epochs(features, labels, args.epochs, r, True, "torch")[0])

    floor = statistics.median(rows["floor: gather + 2 products"])
    epochs = resolve_config("cifar10").readout.epochs
    print(f"readout epoch on {args.rows} x {args.width} cached features, batch {batch}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'what':36s} {'median s':>9s} {'min s':>8s} {'x floor':>8s} {f'x{epochs} epochs s':>14s}")
    result = {"rows": args.rows, "width": args.width, "batch": batch, "threads": torch.get_num_threads(), "system_malloc": args.system_malloc,
              "torch": torch.__version__, "timings": {}}
    for name, times in rows.items():
        med = statistics.median(times)
        result["timings"][name] = {"median_s": med, "min_s": min(times), "ratio_to_floor": med / floor, "times": times,
                                   f"{epochs}_epochs_s": epochs * med}
        print(f"{name:36s} {med:9.3f} {min(times):8.3f} {med / floor:8.2f} {epochs * med:14.1f}")
    if compiled:  # the same seeds and masks: the two steps differ only in float32 summation order
        result["compiled_vs_torch_max_weight_diff"] = max_diff
        print(f"compiled vs torch step, largest weight difference after {args.epochs} epochs: {max_diff:.3g}")
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS {result['peak_rss_gb']:.2f} GiB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
