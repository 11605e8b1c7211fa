"""What one image costs in the stl10 / imagenet presets on this machine, for "What a full run needs".

Times, on random uint8 images with the preset's real network: one Hebbian step (all blocks
learning, batch --batch) per image, one eval-mode feature pass per image, and for ImageNet the
JPEG decode + random-sized crop per image (a 500x375 JPEG, ImageNet's typical size). Each
measurement runs in its own process so that its peak resident memory (ru_maxrss) is its own.
Prints one JSON line per measurement; the README extrapolates from them.

    python benchmarks/full_run_cost.py [--preset stl10|imagenet|both] [--batch 4] [--repeats 2]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(preset: str, what: str, batch: int, repeats: int) -> dict:
    import numpy as np
    import torch

    from neurohebb.config import resolve_config
    from neurohebb.network import HebbNetwork
    from neurohebb.shapes import describe_config

    config = resolve_config(preset, device="cpu")
    out = {"preset": preset, "what": what, "batch": batch, "threads": torch.get_num_threads(), "load_1min": os.getloadavg()[0]}
    if what == "decode":
        from PIL import Image

        from neurohebb.data.imagefolder import random_resized_crop

        rng = np.random.default_rng(0)
        arr = (rng.normal(128, 40, (375, 500, 3)).clip(0, 255)).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
        n = 200
        t0 = time.perf_counter()
        for i in range(n):
            with Image.open(io.BytesIO(data)) as img:
                img = random_resized_crop(img.convert("RGB"), 160, np.random.default_rng([0, i]))
            np.asarray(img)
        out.update(seconds_per_image=(time.perf_counter() - t0) / n, jpeg_bytes=len(data), peak_rss_mib=_peak_mib())
        return out
    shapes = describe_config(config)
    torch.manual_seed(0)
    net = HebbNetwork(config, num_classes=1000 if preset == "imagenet" else 10)
    c, h, w = shapes[0].input_shape
    x = torch.randint(0, 256, (batch, c, h, w), dtype=torch.uint8).float().div_(255)
    weights = sum(b.layer.weight.numel() for b in net.blocks)
    out.update(plastic_weights=weights, feature_size=net.feature_size, readout_weights=net.readout.weight.numel())
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            if what == "hebbian":
                net.train()
                y = x
                for i in range(len(net.blocks)):
                    y = net.learn_block(i, y, propagate=i < len(net.blocks) - 1)
            else:
                net.features(x)
            times.append(time.perf_counter() - t0)
    out.update(seconds_per_image=min(times) / batch, peak_rss_mib=_peak_mib())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("stl10", "imagenet", "both"), default="both")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--one", nargs=2, metavar=("PRESET", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args.batch, args.repeats)))
        return
    presets = ("stl10", "imagenet") if args.preset == "both" else (args.preset,)
    for preset in presets:
        for what in ("hebbian", "features") + (("decode",) if preset == "imagenet" else ()):
            cmd = [sys.executable, __file__, "--one", preset, what, "--batch", str(args.batch), "--repeats", str(args.repeats)]
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            print(done.stdout.strip() or done.stderr.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
