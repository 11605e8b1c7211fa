"""Alternatives for the conv network's hot kernels, timed side by side on this machine.

Leads for the GPU fast mode, measurable anywhere (nothing here changes the engine):

- correlation: the conv Hebbian term sum_b,p y[b,k,p] x[b,:,p+offset] as the engine computes it
  (a convolution with the batch as the channel axis, `rules.conv_correlation`) against
  `torch.nn.grad.conv2d_weight` (the library's weight-gradient kernel: the same sum);
- pooling: max pooling k4 s2 p1 on NCHW against channels-last tensors, and Triangle-then-pool
  against pool-then-Triangle's elementwise part (they commute, so outputs must be equal);
- with --fake-quant-profile: where a fake-quant Hebbian epoch of mnist-mlp spends its time.

    python benchmarks/hebbian_kernels.py [--batch 10] [--repeats 7] [--threads 1] [--fake-quant-profile]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurohebb import rules  # noqa: E402

# (name, in channels, input size, out channels, kernel, Triangle power, max-pooled?) of the presets' blocks
BLOCKS = (
    ("mnist block 1", 1, 28, 96, 5, 0.7, True),
    ("mnist block 2", 96, 14, 384, 3, 1.4, True),
    ("mnist block 3", 384, 7, 1536, 3, 1.0, False),
    ("cifar10 block 1", 3, 32, 96, 5, 0.7, True),
    ("cifar10 block 2", 96, 16, 384, 3, 1.4, True),
    ("cifar10 block 3", 384, 8, 1536, 3, 1.0, False),
)


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-30))


def kernels(batch: int, repeats: int) -> None:
    pool = torch.nn.MaxPool2d(4, 2, 1)
    print(f"batch {batch}, median of {repeats} (ms)")
    print(f"{'block':17s}{'corr conv':>11s}{'corr wgrad':>11s}{'ratio':>7s}{'rel diff':>10s}"
          f"{'pool nchw':>11s}{'pool cl':>9s}{'act+pool':>10s}{'pool+act':>10s}{'equal':>7s}")
    gen = torch.Generator().manual_seed(0)
    for name, c, size, k, ksize, power, pooled in BLOCKS:
        p = ksize // 2
        x = F.pad(torch.randn(batch, c, size, size, generator=gen), (p, p, p, p), mode="reflect")
        w = torch.randn(k, c, ksize, ksize, generator=gen)
        u = F.conv2d(x, w)
        y = torch.softmax(u, dim=1)
        ref = rules.conv_correlation(x, y, (ksize, ksize))
        alt = torch.nn.grad.conv2d_weight(x, w.shape, y)
        t_conv = median_ms(lambda: rules.conv_correlation(x, y, (ksize, ksize)), repeats)
        t_wgrad = median_ms(lambda: torch.nn.grad.conv2d_weight(x, w.shape, y), repeats)
        line = f"{name:17s}{t_conv:11.2f}{t_wgrad:11.2f}{t_wgrad / t_conv:7.2f}{rel_diff(ref, alt):10.1e}"
        if pooled:
            v = u - u.mean(dim=1, keepdim=True)
            vc = v.contiguous(memory_format=torch.channels_last)
            first = pool(torch.relu(v) ** power)
            second = torch.relu(pool(v)) ** power
            line += (f"{median_ms(lambda: pool(v), repeats):11.2f}{median_ms(lambda: pool(vc), repeats):9.2f}"
                     f"{median_ms(lambda: pool(torch.relu(v) ** power), repeats):10.2f}"
                     f"{median_ms(lambda: torch.relu(pool(v)) ** power, repeats):10.2f}{str(torch.equal(first, second)):>7s}")
        print(line, flush=True)


def fake_quant_profile(images: int) -> None:
    from neurohebb.config import resolve_config
    from neurohebb.engine import hebbian_phase, seeded_generators
    from neurohebb.network import HebbNetwork
    from neurohebb.steps import make_step

    x = torch.randint(0, 256, (images, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    config = resolve_config("mnist-mlp", device="cpu")
    init_gen, order_gen = seeded_generators(0)
    step = make_step("weight=m8:stochastic,update=s16.14:stochastic", "fake-quant", seed=0, device="cpu", stats_every=10)
    net = HebbNetwork(config, generator=init_gen, step=step)
    with torch.profiler.profile() as prof:
        hebbian_phase(net, x, config, torch.device("cpu"), order_gen, progress=False)
    print(f"\nfake-quant Hebbian epoch, mnist-mlp, {images} random images, m8 + s16.14 stochastic:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=10, help="images per Hebbian step (default 10, the paper's)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--fake-quant-profile", action="store_true", help="also profile a fake-quant mnist-mlp epoch")
    p.add_argument("--images", type=int, default=3000, help="images for the fake-quant profile (default 3000)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.no_grad():
        kernels(args.batch, args.repeats)
    if args.fake_quant_profile:
        fake_quant_profile(args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
