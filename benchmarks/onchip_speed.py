"""Samples per second of on-chip learning: neurohebb's engine and Lava, on the same MNIST samples.

Both run the same closed loop (rate-coded input, LearningDense / the engine's plastic synapses,
LIF WTA, interneuron and weak lateral inhibition as in the on-chip presets (`--lateral 0`: the
interneuron alone), a sum-of-products rule learning from the WTA spikes) at 100 neurons; the engine's weights after the Lava samples are checked equal to Lava's before timing
is reported. Usage:

    PYTHONPATH=. python benchmarks/onchip_speed.py [--lava-samples 10] [--engine-samples 3000]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

RULE = "3*2^-7 * u0 * x1 * y1 - 5*2^-7 * u0 * y1 * w"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lava-samples", type=int, default=10)
    ap.add_argument("--engine-samples", type=int, default=3000)
    ap.add_argument("--neurons", type=int, default=100)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--lateral", type=float, default=0.25, help="lateral inhibition, thresholds per spike (0: none)")
    ap.add_argument("--data-dir", default=os.environ.get("NEUROHEBB_SHARED_DATA", "../shared/data"))
    args = ap.parse_args()

    from neurohebb.backends.lava.learning import OnChipRule, run_lava_learning
    from neurohebb.backends.lava.mapping import WTACircuit, map_arrays
    from neurohebb.data import load_dataset
    from neurohebb.onchip.circuit import inhibition_weight
    from neurohebb.onchip.engine import ChipLearningLoop, Circuit
    from neurohebb.onchip.model import load_engine_model
    from neurohebb.onchip.rules import parse_trace_spec

    n = max(args.engine_samples, args.lava_samples, 1000)
    ds = load_dataset("mnist", args.data_dir, train_subset=n, test_subset=1)
    images = np.asarray(ds.x_train).reshape(n, -1)
    w = np.random.default_rng(0).normal(size=(args.neurons, images.shape[1])) * 1.25
    net = map_arrays(w, images[:1000], WTACircuit(steps=args.steps, spikes_target=4))
    traces = parse_trace_spec("x1=12:8,y1=16:4")
    window = net.circuit.window
    lat_weight, lat_exp = inhibition_weight(args.lateral * int(net.vth))
    circuit = Circuit(steps=args.steps, gap=net.circuit.gap, vth=int(net.vth), inh_weight=int(net.inh_weight),
                      inh_exp=int(net.inh_exp), weight_exp=int(net.ff.weight_exp), lat_weight=lat_weight, lat_exp=lat_exp)
    model = load_engine_model("loihi2")

    def engine(samples: int) -> tuple[float, np.ndarray]:
        loop = ChipLearningLoop(model, RULE, traces, torch.from_numpy(net.ff.weights.astype(np.int64)), circuit,
                                t_epoch=window, rng_seed=1)
        t0 = time.perf_counter()
        loop.run(torch.from_numpy(images[:samples]))
        return time.perf_counter() - t0, loop.weights.numpy()

    rule = OnChipRule(RULE, traces, t_epoch=window, rng_seed=1)
    run = run_lava_learning(net, images[: args.lava_samples], rule,
                            lateral_weight=(lat_weight, lat_exp) if lat_weight else None)
    lava_rate = args.lava_samples / run.seconds
    _, w_check = engine(args.lava_samples)
    identical = bool((w_check == run.final).all())
    seconds, _ = engine(args.engine_samples)
    rate = args.engine_samples / seconds
    print(f"neurons {args.neurons}, steps/sample {window}, lateral {lat_weight}<<{lat_exp}, rule {RULE!r}")
    print(f"lava   : {args.lava_samples} samples in {run.seconds:.1f} s = {lava_rate:.3f} samples/s")
    print(f"engine : {args.engine_samples} samples in {seconds:.1f} s = {rate:.1f} samples/s (weights identical to Lava's: {identical})")
    print(f"ratio  : {rate / lava_rate:.0f}x; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
