"""How close is the cifar10 pipeline on the CPU to its convolution floor? One run, same machine.

The floor: the convolutions the pipeline cannot avoid, timed alone with the fastest kernel
available here -- per Hebbian step (batch 10) each block's forward convolution (the faster of
NCHW and channels-last maps) and, for a plastic block, its correlation (the fastest of
`rules.conv_correlation`, `torch.nn.grad.conv2d_weight` and one GEMM on unfolded patches); per
feature batch (500) each block's forward convolution (the faster layout again). Each kernel's median over `--repeats` calls on the real activation
shapes, per image, is multiplied by the images the pipeline passes through it. Then the engine itself: the Hebbian epoch
(`engine.hebbian_phase`), the features of the train and test images (`engine.extract_features`)
and the readout on the cached features (`engine.train_readout`, `--readout-epochs` of them; the
per-epoch figure is what the preset's 50 epochs multiply). Prints the ratios to the floor, the
test accuracy of this (short) run and the peak RSS of the process.

    python benchmarks/cpu_cifar10_epoch.py [--images 1000] [--test-images 1000] [--readout-epochs 2]
        [--repeats 5] [--preset cifar10] [--correlation auto|conv|wgrad|gemm] [--keep-tiny] [--json OUT]
    python benchmarks/cpu_cifar10_epoch.py --images 50000 --test-images 10000 --readout-epochs 50   # the full run (long)
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

from neurohebb import rules  # noqa: E402
from neurohebb.memory import add_allocator_flag, apply_allocator_flag  # noqa: E402
from neurohebb.config import resolve_config  # noqa: E402
from neurohebb.engine import (FEATURE_BATCH, accuracy_from_features, extract_features, hebbian_phase,  # noqa: E402
                              seeded_generators, to_device_float, train_readout)
from neurohebb.network import HebbNetwork  # noqa: E402


def median_s(fn, repeats: int) -> float:
    fn()  # warm-up (oneDNN primitive creation, allocator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def block_inputs(net: HebbNetwork, x: torch.Tensor) -> list[torch.Tensor]:
    """Each block's padded input on the batch `x` (what its convolutions see)."""
    net.eval()
    out = []
    for block in net.blocks:
        x_pre = block.layer.pre(block.normalize(x))
        out.append(x_pre)
        x = block(x)
    return out


@torch.no_grad()
def conv_floor(net: HebbNetwork, images: torch.Tensor, batch: int, repeats: int, correlation: bool) -> tuple[float, list[dict]]:
    """Seconds per image of the forward (and correlation) convolutions on batches of `batch`
    (fewer if there are fewer images), summed over blocks."""
    total, rows = 0.0, []
    batch = min(batch, int(images.shape[0]))
    for block, x_pre in zip(net.blocks, block_inputs(net, to_device_float(images[:batch], torch.device("cpu")))):
        layer = block.layer
        w = layer.weight
        t_nchw = median_s(lambda: F.conv2d(x_pre, w, stride=layer.cfg.stride), repeats)
        x_cl, w_cl = (t.contiguous(memory_format=torch.channels_last) for t in (x_pre, w))
        t_nhwc = median_s(lambda: F.conv2d(x_cl, w_cl, stride=layer.cfg.stride), repeats)
        t_fwd = min(t_nchw, t_nhwc)
        row = {"block": len(rows), "input": list(x_pre.shape), "forward_ms": 1e3 * t_fwd,
               "forward_nchw_ms": 1e3 * t_nchw, "forward_nhwc_ms": 1e3 * t_nhwc}
        total += t_fwd
        if correlation and layer.plastic:
            y = torch.softmax(F.conv2d(x_pre, w, stride=layer.cfg.stride), dim=1)
            kernel = tuple(w.shape[-2:])
            t_conv = median_s(lambda: rules.conv_correlation(x_pre, y, kernel, layer.cfg.stride), repeats)
            t_wgrad = median_s(lambda: torch.nn.grad.conv2d_weight(x_pre, w.shape, y, stride=layer.cfg.stride), repeats)
            t_gemm = median_s(lambda: rules.conv_correlation_gemm(x_pre, y, kernel, layer.cfg.stride), repeats)
            row.update(correlation_conv_ms=1e3 * t_conv, correlation_wgrad_ms=1e3 * t_wgrad,
                       correlation_gemm_ms=1e3 * t_gemm)
            total += min(t_conv, t_wgrad, t_gemm)
        rows.append(row)
    return total / batch, rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="cifar10")
    p.add_argument("--images", type=int, default=1000, help="training images (50000: the full epoch)")
    p.add_argument("--test-images", type=int, default=1000)
    p.add_argument("--readout-epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="calls per floor kernel (median)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--correlation", default="auto", choices=rules.CORRELATIONS,
                   help="the float32 step's conv correlation kernel (hebbian.correlation; conv with "
                        "--keep-tiny is bit-identical to earlier releases)")
    p.add_argument("--keep-tiny", action="store_true",
                   help="hebbian.flush_tiny=false: keep post-synaptic values below 2^-100 (subnormal arithmetic)")
    p.add_argument("--json", metavar="OUT")
    add_allocator_flag(p)
    args = p.parse_args()
    apply_allocator_flag(args)

    from neurohebb.data import load_dataset

    config = resolve_config(args.preset, device="cpu", overrides=[f"readout.epochs={args.readout_epochs}"])
    ds = load_dataset(config.data.dataset, train_subset=args.images, test_subset=args.test_images)
    x_train, y_train = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train).long()
    x_test, y_test = torch.from_numpy(ds.x_test), torch.from_numpy(ds.y_test).long()
    n_train, n_test = int(x_train.shape[0]), int(x_test.shape[0])
    hb = config.hebbian.batch_size
    init_gen, order_gen = seeded_generators(args.seed)
    from neurohebb.steps import Float32Step

    net = HebbNetwork(config, num_classes=ds.num_classes, generator=init_gen,
                      step=Float32Step(correlation=args.correlation, flush_tiny=not args.keep_tiny))
    device = torch.device("cpu")

    # the floor, on the network's initial weights: the kernels' cost does not depend on values, as
    # long as none is subnormal (on Intel CPUs each costs an assist; hebbian.flush_tiny avoids them)
    step_floor, step_rows = conv_floor(net, x_train, hb, args.repeats, correlation=True)
    feat_floor, feat_rows = conv_floor(net, x_train, FEATURE_BATCH, args.repeats, correlation=False)
    floor_hebb = step_floor * n_train * config.hebbian.epochs
    floor_feat = feat_floor * (n_train + n_test)

    hebb_s = hebbian_phase(net, x_train, config, device, order_gen, progress=False)
    t = time.perf_counter()
    f_train = extract_features(net, x_train, device)
    f_test = extract_features(net, x_test, device)
    feat_s = time.perf_counter() - t
    readout = train_readout(net, f_train, y_train, config, order_gen, progress=False)
    accuracy = accuracy_from_features(net, f_test, y_test)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux

    per_epoch = readout.seconds / max(args.readout_epochs, 1)
    result = {
        "preset": args.preset, "train_images": n_train, "test_images": n_test, "threads": torch.get_num_threads(), "system_malloc": args.system_malloc,
        "torch": torch.__version__, "correlation": args.correlation, "flush_tiny": not args.keep_tiny, "correlation_kernels": net.step.kernels, "floor_step_blocks": step_rows, "floor_feature_blocks": feat_rows,
        "floor_hebbian_s": floor_hebb, "hebbian_s": hebb_s, "floor_features_s": floor_feat, "features_s": feat_s,
        "ratio_hebbian_plus_features": (hebb_s + feat_s) / (floor_hebb + floor_feat),
        "readout_s": readout.seconds, "readout_epochs": args.readout_epochs, "readout_per_epoch_s": per_epoch,
        "readout_50_epochs_at_this_size_s": 50 * per_epoch, "test_accuracy": accuracy, "peak_rss_gb": rss_gb,
    }
    print(f"{args.preset}: {n_train} train / {n_test} test images, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for rows, what in ((step_rows, f"per Hebbian step (batch {hb})"),
                       (feat_rows, f"per feature batch ({min(FEATURE_BATCH, n_train)})")):
        print(f"  floor kernels {what}:")
        for r in rows:
            extra = "".join(f"  {k[:-3]} {v:.2f} ms" for k, v in r.items() if k.startswith(("correlation", "forward_n")))
            print(f"    block {r['block']} input {r['input']}: forward {r['forward_ms']:.2f} ms{extra}")
    print(f"{'what':34s} {'seconds':>10s} {'floor s':>10s} {'x floor':>8s}")
    print(f"{'hebbian epoch':34s} {hebb_s:10.2f} {floor_hebb:10.2f} {hebb_s / floor_hebb:8.2f}")
    print(f"{'features (train + test)':34s} {feat_s:10.2f} {floor_feat:10.2f} {feat_s / floor_feat:8.2f}")
    print(f"{'hebbian + features':34s} {hebb_s + feat_s:10.2f} {floor_hebb + floor_feat:10.2f} "
          f"{result['ratio_hebbian_plus_features']:8.2f}")
    print(f"{'readout, per epoch':34s} {per_epoch:10.2f}   ({args.readout_epochs} epochs: {readout.seconds:.2f} s)")
    print(f"test accuracy {accuracy:.2f} % (this run's size), peak RSS {rss_gb:.2f} GiB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
