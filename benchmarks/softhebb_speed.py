"""Where a SoftHebb run's time goes, and how the fast mode compares with the paper's recipe.

Two modes, run back to back on the same device, data and seeds:

- reference: the recipe followed literally (Journe et al. 2023 and the authors' script): Hebbian
  epoch with batch 10, then a readout whose every epoch recomputes the frozen network's features
  for every batch, through autograd and `torch.optim.Adam`;
- fast: neurohebb's engine: the same Hebbian epoch (all layers in one pass), the dataset resident
  on the device, features computed once, the readout's closed-form Adam step on cached features.

Per phase it reports wall seconds (data to device, Hebbian epoch, feature extraction, readout,
evaluation), images per second, achieved TFLOP/s of the Hebbian epoch against the device's fp32
matrix-multiply rate measured in the same run, peak memory, test accuracy, and the
reference/fast ratio. `--quant POLICY` adds the fast mode's Hebbian epoch under a fake-quant
precision policy and its slowdown against float.

    python benchmarks/softhebb_speed.py --preset cifar10 --data-dir ../shared/data --seeds 0,1,2
    python benchmarks/softhebb_speed.py --preset digits --modes fast,reference   # a quick look
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurohebb.config import resolve_config  # noqa: E402
from neurohebb.engine import (accuracy_from_features, extract_features, hebbian_phase, load_data_for,  # noqa: E402
                              resolve_device, seeded_generators, to_device_float, train_readout)
from neurohebb.network import HebbNetwork  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(device: torch.device, repeats: int = 5) -> float:
    """Median fp32 dense matrix-multiply rate of this device (TFLOP/s)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e12


def flops_per_image(net: HebbNetwork, image_shape: tuple[int, ...], device: torch.device) -> tuple[float, float]:
    """(forward, Hebbian step) multiply-add FLOPs per image, from each layer's output size."""
    forward = hebbian = 0.0
    x = torch.zeros((1, *image_shape), device=device)
    net.eval()
    with torch.no_grad():
        for block in net.blocks:
            u = block.layer(block.normalize(x))
            w = block.layer.weight
            f = 2.0 * u[0].numel() * w[0].numel()  # every output value is a fan-in-long dot product
            forward += f
            hebbian += 2 * f if block.layer.plastic else f  # + the correlation sum_y x of the update
            x = block(x)
    return forward, hebbian


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reference_readout(net: HebbNetwork, x_train: torch.Tensor, y_train: torch.Tensor, config, device, gen) -> None:
    """The literal recipe: features recomputed each batch of each epoch, autograd + Adam."""
    rc = config.readout
    optimizer = torch.optim.Adam(net.readout.parameters(), lr=rc.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=[int(rc.epochs * r) for r in rc.lr_milestones], gamma=rc.lr_gamma)
    for block in net.blocks:
        block.eval()
    y_train = y_train.to(device)
    for _ in range(rc.epochs):
        order = torch.randperm(x_train.shape[0], generator=gen)
        net.readout.train()
        net.dropout.train()
        for s in range(0, x_train.shape[0], rc.batch_size):
            idx = order[s:s + rc.batch_size]
            with torch.no_grad():
                feats = net.features(to_device_float(x_train[idx], device))
            loss = F.cross_entropy(net.classify(feats), y_train[idx.to(device)])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    net.eval()


def run_once(mode: str, args, seed: int, dataset, device: torch.device, quant: str | None = None) -> dict:
    overrides = list(args.set)
    config = resolve_config(args.preset, overrides=overrides, seed=seed, device=str(device))
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in
                                        (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    row: dict = {"mode": mode if quant is None else f"{mode}+{quant}", "seed": seed}
    total0 = time.perf_counter()
    t = time.perf_counter()
    if mode == "fast":  # resident on the device: no host->device copy per batch
        x_train, x_test = x_train.to(device), x_test.to(device)
        sync(device)
    init_gen, order_gen = seeded_generators(seed)
    from neurohebb.steps import make_step

    step = make_step(quant, "fake-quant", seed=seed, device=device, stats_every=args.stats_every)
    net = HebbNetwork(config, num_classes=dataset.num_classes, generator=init_gen, step=step).to(device)
    row["data_s"] = time.perf_counter() - t

    row["hebbian_s"] = hebbian_phase(net, x_train, config, device, order_gen, progress=False)
    fwd, heb = flops_per_image(net, tuple(x_train.shape[1:]), device)
    row["hebbian_images_per_s"] = x_train.shape[0] * config.hebbian.epochs / row["hebbian_s"]
    row["hebbian_tflops"] = heb * x_train.shape[0] * config.hebbian.epochs / row["hebbian_s"] / 1e12

    if mode == "fast":
        t = time.perf_counter()
        train_features = extract_features(net, x_train, device)
        test_features = extract_features(net, x_test, device)
        sync(device)
        row["features_s"] = time.perf_counter() - t
        row["readout_s"] = train_readout(net, train_features, y_train, config, order_gen, progress=False).seconds
        t = time.perf_counter()
        row["test_accuracy"] = accuracy_from_features(net, test_features, y_test)
        row["eval_s"] = time.perf_counter() - t
    else:
        row["features_s"] = 0.0  # recomputed inside every readout epoch
        t = time.perf_counter()
        reference_readout(net, x_train, y_train, config, device, order_gen)
        sync(device)
        row["readout_s"] = time.perf_counter() - t
        t = time.perf_counter()
        row["test_accuracy"] = accuracy_from_features(net, extract_features(net, x_test, device), y_test)
        row["eval_s"] = time.perf_counter() - t
    row["total_s"] = time.perf_counter() - total0
    row["forward_gflop_per_image"] = fwd / 1e9
    row["peak_memory_mb"] = peak_memory_mb(device)
    return row


PHASES = ("data_s", "hebbian_s", "features_s", "readout_s", "eval_s", "total_s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cifar10")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--modes", default="fast,reference", help="fast, reference or both (default both)")
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--test-subset", type=int, default=None)
    p.add_argument("--quant", default=None, metavar="POLICY",
                   help="also time the fast Hebbian epoch under this fake-quant policy, e.g. weight=m8:stochastic,update=s16.14:stochastic")
    p.add_argument("--stats-every", type=int, default=10)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--json", metavar="OUT", help="write all rows and medians here")
    args = p.parse_args()

    device = resolve_device(args.device)
    seeds = [int(s) for s in args.seeds.split(",")]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    config = resolve_config(args.preset, overrides=list(args.set), data__data_dir=args.data_dir,
                            data__train_subset=args.train_subset, data__test_subset=args.test_subset)
    dataset = load_data_for(config)
    rate = matmul_tflops(device)
    rows = []
    for seed in seeds:
        for mode in modes:
            rows.append(run_once(mode, args, seed, dataset, device))
            print(f"  {mode:9s} seed {seed}: {rows[-1]['test_accuracy']:.2f} %, {rows[-1]['total_s']:.1f} s", file=sys.stderr)
        if args.quant:
            rows.append(run_once("fast", args, seed, dataset, device, quant=args.quant))

    medians: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == name]
        medians[name] = {k: statistics.median(r[k] for r in mine)
                         for k in (*PHASES, "hebbian_images_per_s", "hebbian_tflops", "peak_memory_mb", "test_accuracy")}
        medians[name]["min_accuracy"] = min(r["test_accuracy"] for r in mine)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.preset} on {name}, torch {torch.__version__}; {dataset.x_train.shape[0]} train / {dataset.x_test.shape[0]} test "
          f"images; seeds {seeds}; fp32 matmul rate {rate:.2f} TFLOP/s (medians over seeds)")
    cols = ("data_s", "hebbian_s", "features_s", "readout_s", "eval_s", "total_s")
    print(f"{'mode':48s}" + "".join(f"{c:>11s}" for c in cols) + f"{'img/s heb':>11s}{'TFLOP/s':>9s}{'of peak':>8s}{'mem MB':>9s}{'acc %':>8s}{'min acc':>8s}")
    for mode, m in medians.items():
        print(f"{mode:48s}" + "".join(f"{m[c]:11.2f}" for c in cols)
              + f"{m['hebbian_images_per_s']:11.0f}{m['hebbian_tflops']:9.3f}{m['hebbian_tflops'] / rate:8.1%}"
              + f"{m['peak_memory_mb']:9.0f}{m['test_accuracy']:8.2f}{m['min_accuracy']:8.2f}")
    ratios = {}
    if "fast" in medians and "reference" in medians:
        ratios["reference_over_fast_total"] = medians["reference"]["total_s"] / medians["fast"]["total_s"]
        print(f"reference / fast, total wall time: {ratios['reference_over_fast_total']:.2f}x")
    quant_modes = [m for m in medians if m.startswith("fast+")]
    if quant_modes and "fast" in medians:
        ratios["quant_over_float_hebbian"] = medians[quant_modes[0]]["hebbian_s"] / medians["fast"]["hebbian_s"]
        print(f"fake-quant / float, Hebbian epoch: {ratios['quant_over_float_hebbian']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "matmul_tflops": rate, "rows": rows, "medians": medians,
                                               "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
