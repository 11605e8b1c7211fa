"""How close is one mnist-mlp Hebbian epoch on the CPU to its matrix-multiply floor?

The floor: every batch of a linear soft-WTA layer fundamentally needs two matrix products,
u = x W^T ([B,I] x [I,K]) and the correlation y^T x ([K,B] x [B,I]); the second floor row adds
the one read-modify-write pass over W that applying any update needs. This script times, in one
run and on the same machine, (a) those two products alone over a full epoch and (b) the real
Hebbian epoch of the engine (the same batches, softmax, normalisation, adaptive rate, update), and
prints medians over repeats and their ratio. Also reports the slowdown of fake-quant training
(the exact float64 datapath `neurohebb sweep` runs) against float32, beside that datapath's own
floor: the two float64 products, two Mersenne-twister draws per synapse and one pass over W,
which no bit-identical engine can skip (so floor / float32 bounds the reachable ratio).

    python benchmarks/cpu_hebbian_epoch.py [--repeats 3] [--quant-repeats 1] [--train-subset N] [--keep-tiny] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurohebb.memory import add_allocator_flag, apply_allocator_flag  # noqa: E402
from neurohebb.config import resolve_config  # noqa: E402
from neurohebb.engine import hebbian_phase, seeded_generators  # noqa: E402
from neurohebb.network import HebbNetwork  # noqa: E402
from neurohebb.steps import fused_tail  # noqa: E402


def load_images(n: int | None) -> torch.Tensor:
    try:
        from neurohebb.data import load_dataset

        ds = load_dataset("mnist", train_subset=n)
        return torch.from_numpy(ds.x_train)
    except Exception as exc:  # no MNIST here: same shapes, random pixels (timing only)
        print(f"(MNIST not available: {exc}; timing on random images)", file=sys.stderr)
        return torch.randint(0, 256, (n or 60000, 1, 28, 28), dtype=torch.uint8)


def matmul_floor(x: torch.Tensor, k: int, batch: int) -> float:
    """Seconds for the two products per batch over the epoch, nothing else."""
    n, i = x.shape[0], x[0].numel()
    xf = x.reshape(n, i).float().div_(255)
    w = torch.randn(k, i)
    y = torch.empty(batch, k)
    start = time.perf_counter()
    for s in range(0, n, batch):
        xb = xf[s:s + batch]
        u = xb @ w.t()
        torch.mm(y[: xb.shape[0]].t(), xb)
        del u
    return time.perf_counter() - start


def update_floor(x: torch.Tensor, k: int, batch: int) -> float:
    """Seconds for the two products plus one read-modify-write pass over W per batch (the
    issue's floor for the whole step: the update must touch every weight once)."""
    n, i = x.shape[0], x[0].numel()
    xf = x.reshape(n, i).float().div_(255)
    w = torch.randn(k, i)
    y = torch.full((batch, k), 1e-3)
    dw = torch.empty(k, i)
    lr = torch.full((k, 1), 1e-6)
    start = time.perf_counter()
    for s in range(0, n, batch):
        xb = xf[s:s + batch]
        u = xb @ w.t()
        torch.mm(y[: xb.shape[0]].t(), xb, out=dw)
        w.addcmul_(lr, dw)
        del u
    return time.perf_counter() - start


def fake_quant_floor(x: torch.Tensor, k: int, batch: int, policy: str) -> float:
    """Seconds for what the fake-quant step cannot skip while its results stay bit-identical:
    the two products in float64 (at the sweep's default point, a float input makes x W^T need
    ~50 bits and a float post makes the correlation's rounding dgemm's own), one draw per synapse
    from torch's Mersenne twister for each stochastically rounded weight-shaped role of `policy`
    (the stream the results depend on; drawn by the fastest generator the engine has,
    `fused_tail`'s MT19937) and one read-modify-write pass over the float64 weights. Needs
    `fused_tail.twister_ok()`."""
    import numpy as np

    from neurohebb.precision.policy import PrecisionPolicy

    parsed = PrecisionPolicy.parse(policy)
    stochastic = [role for role in ("update", "weight")
                  if not parsed.spec(role).is_float and parsed.spec(role).rounding == "stochastic"]
    n, i = x.shape[0], x[0].numel()
    xf = x.reshape(n, i).float().div_(255).double()
    w = torch.randn(k, i, dtype=torch.float64)
    y = torch.full((batch, k), 1e-3, dtype=torch.float64)
    h = torch.empty(k, i, dtype=torch.float64)
    lr = torch.full((k, 1), 1e-6, dtype=torch.float64)
    draws = np.empty((k, i), np.uint32)
    twister = fused_tail.TwisterState(torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for s in range(0, n, batch):
        xb = xf[s:s + batch]
        u = xb @ w.t()
        torch.mm(y[: xb.shape[0]].t(), xb, out=h)
        for _ in stochastic:  # the update's rounding, then the weights'
            twister.draws(draws)
        w.addcmul_(lr, h)
        del u
    return time.perf_counter() - start


def hebbian_epoch(x: torch.Tensor, overrides: list[str]) -> tuple[float, torch.Tensor]:
    """The float32 epoch as `train` runs it: its seconds and the trained weights."""
    config = resolve_config("mnist-mlp", overrides=overrides, device="cpu")
    init_gen, order_gen = seeded_generators(0)
    net = HebbNetwork(config, generator=init_gen)
    seconds = hebbian_phase(net, x, config, torch.device("cpu"), order_gen, progress=False)
    return seconds, net.blocks[0].layer.weight.detach().clone()


def quantised_epoch(x: torch.Tensor, overrides: list[str], policy: str, fused: bool | None = None,
                    stats_every: int = 10) -> tuple[float, torch.Tensor]:
    """The same epoch through the fake-quant engine `train --precision` uses (exact float64
    datapath; stats every 10th step, its default), with its compiled tail where numba is
    installed (`fused=None`) or on the torch path throughout (`fused=False`). Returns the
    seconds and the trained weights (the two paths must agree bit for bit)."""
    from neurohebb.steps.fakequant import FakeQuantEngine

    config = resolve_config("mnist-mlp", overrides=overrides, device="cpu")
    init_gen, order_gen = seeded_generators(0)
    step = FakeQuantEngine(policy, seed=0, stats_every=stats_every, fused=fused)
    net = HebbNetwork(config, generator=init_gen, step=step)
    seconds = hebbian_phase(net, x, config, torch.device("cpu"), order_gen, progress=False)
    return seconds, net.blocks[0].layer.weight.detach().clone()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--quant-policy", default="weight=m8:stochastic,update=s16.14:stochastic",
                   help="policy of the fake-quant row (default: the sweep's 8-bit stochastic point)")
    p.add_argument("--quant-repeats", type=int, default=1, help="repeats of the (slow) fake-quant row; 0 skips it")
    p.add_argument("--quant-torch-path", action="store_true",
                   help="also time the fake-quant row on the torch path (no compiled tail), in the same repeats")
    p.add_argument("--quant-stats-every", type=int, default=10,
                   help="the fake-quant rows' diagnostics sampling (default 10, as train; the sweep uses 1)")
    p.add_argument("--keep-tiny", action="store_true",
                   help="also time the float32 epoch with hebbian.flush_tiny=false (earlier releases' "
                        "subnormal arithmetic) in the same repeats, and count the weights the flush changed")
    p.add_argument("--torch-linear", action="store_true",
                   help="also time the float32 epoch with hebbian.linear_kernel=torch (torch's operators, "
                        "not the compiled step) in the same repeats")
    p.add_argument("--json", metavar="OUT")
    add_allocator_flag(p)
    args = p.parse_args()
    apply_allocator_flag(args)

    x = load_images(args.train_subset)
    overrides = [f"hebbian.batch_size={args.batch_size}"]
    k = resolve_config("mnist-mlp").layers[0].out_channels
    rows: dict[str, list[float]] = {"matmul floor": [], "floor + one W update pass": [], "hebbian epoch (float32)": []}
    quant_name = "hebbian epoch (fake-quant, sweep's m8 policy)"
    qfloor_name = "fake-quant floor (f64 products, draws, W)"
    torch_name = "... the same on the torch path"
    if args.quant_repeats:
        rows[quant_name] = []
        if fused_tail.twister_ok():  # the floor's draws need the engine's own generator
            rows[qfloor_name] = []
        if args.quant_torch_path:
            rows[torch_name] = []
    identical = []
    kept_name = "... with hebbian.flush_tiny=false"
    if args.keep_tiny:
        rows[kept_name] = []
    flush_diffs = []
    torch_linear_name = "... with hebbian.linear_kernel=torch"
    if args.torch_linear:
        rows[torch_linear_name] = []
    for r in range(args.repeats):
        rows["matmul floor"].append(matmul_floor(x, k, args.batch_size))
        rows["floor + one W update pass"].append(update_floor(x, k, args.batch_size))
        seconds, w_flushed = hebbian_epoch(x, overrides)
        rows["hebbian epoch (float32)"].append(seconds)
        if args.torch_linear:
            rows[torch_linear_name].append(hebbian_epoch(x, overrides + ["hebbian.linear_kernel=torch"])[0])
        if args.keep_tiny:
            seconds, w_kept = hebbian_epoch(x, overrides + ["hebbian.flush_tiny=false"])
            rows[kept_name].append(seconds)
            flush_diffs.append((int((w_flushed != w_kept).sum()), float((w_flushed - w_kept).abs().max())))
        if r < args.quant_repeats:
            seconds, w_fused = quantised_epoch(x, overrides, args.quant_policy, None, args.quant_stats_every)
            rows[quant_name].append(seconds)
            if qfloor_name in rows:
                rows[qfloor_name].append(fake_quant_floor(x, k, args.batch_size, args.quant_policy))
            if args.quant_torch_path:
                seconds, w_torch = quantised_epoch(x, overrides, args.quant_policy, False, args.quant_stats_every)
                rows[torch_name].append(seconds)
                identical.append(bool(torch.equal(w_fused, w_torch)))

    floor = statistics.median(rows["matmul floor"])
    from neurohebb.steps import linear_kernels

    result = {"images": int(x.shape[0]), "batch_size": args.batch_size, "neurons": k, "threads": torch.get_num_threads(), "system_malloc": args.system_malloc,
              "torch": torch.__version__, "linear_kernel": linear_kernels.unavailable_reason() or "compiled", "rows": {}}
    print(f"mnist-mlp Hebbian epoch on {x.shape[0]} images, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, linear step: {result['linear_kernel']}")
    floor2 = statistics.median(rows["floor + one W update pass"])
    print(f"{'what':40s} {'median s':>10s} {'min s':>8s} {'x floor':>8s} {'x floor+W':>10s}")
    for name, times in rows.items():
        med = statistics.median(times)
        result["rows"][name] = {"median_s": med, "min_s": min(times), "ratio_to_floor": med / floor,
                                "ratio_to_update_floor": med / floor2, "times": times}
        print(f"{name:40s} {med:10.3f} {min(times):8.3f} {med / floor:8.2f} {med / floor2:10.2f}")
    # the machine's speed drifts between repeats (shared host): the ratio within each repeat,
    # whose rows ran back to back, is steadier than the ratio of medians
    paired = [e / f for e, f in zip(rows["hebbian epoch (float32)"], rows["floor + one W update pass"])]
    result["epoch_over_update_floor_per_repeat"] = paired
    result["epoch_over_update_floor_median_of_repeats"] = statistics.median(paired)
    print(f"float32 epoch / (floor + W), repeat by repeat: {', '.join(f'{r:.2f}' for r in paired)} "
          f"(median {statistics.median(paired):.2f})")
    # the floor's one pass over W is the row most exposed to other tenants' cache traffic (its
    # time can triple between repeats): the epoch's median against the fastest floor of the run
    # is the ratio least flattered by a slow floor
    strict = statistics.median(rows["hebbian epoch (float32)"]) / min(rows["floor + one W update pass"])
    result["epoch_median_over_fastest_update_floor"] = strict
    print(f"float32 epoch (median) / fastest (floor + W) of the run: {strict:.2f}")
    if quant_name in rows:
        qpaired = [q / e for q, e in zip(rows[quant_name], rows["hebbian epoch (float32)"])]
        result["fake_quant_over_float32_per_repeat"] = qpaired
        result["fake_quant_stats_every"] = args.quant_stats_every
        print(f"fake-quant / float32 epoch, repeat by repeat: {', '.join(f'{r:.2f}' for r in qpaired)}")
        if qfloor_name in rows:
            # the lowest fake-quant / float32 ratio a bit-identical engine could reach here
            fpaired = [q / e for q, e in zip(rows[qfloor_name], rows["hebbian epoch (float32)"])]
            result["fake_quant_floor_over_float32_per_repeat"] = fpaired
            print(f"fake-quant floor / float32 epoch, repeat by repeat: {', '.join(f'{r:.2f}' for r in fpaired)}")
        result["fake_quant_compiled_tail"] = fused_tail.unavailable_reason() or "yes"
        print(f"fake-quant compiled tail: {result['fake_quant_compiled_tail']}")
    if flush_diffs:
        result["flush_tiny_weights_changed"] = [{"count": n, "of": w_flushed.numel(), "max_abs": m} for n, m in flush_diffs]
        n, m = flush_diffs[0]
        print(f"weights the flush changed: {n} of {w_flushed.numel()} (largest difference {m:.3g})")
    if identical:
        result["torch_path_weights_identical"] = identical
        print(f"torch path's weights identical to the compiled tail's: {identical}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
