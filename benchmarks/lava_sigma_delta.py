"""Benchmark: a conv run deployed as the sigma-delta circuit -- Lava vs its NumPy twin.

    .venv/bin/python benchmarks/lava_sigma_delta.py RUN_DIR --lava-samples 20 --emulate-samples 10000

Maps RUN_DIR's network (calibration on 1000 training images), plays the first ``--lava-samples``
test images in Lava's fixed-point simulator and the first ``--emulate-samples`` in the NumPy
twin, checks that the twin reproduces Lava's readout and graded spike counts exactly on the
common samples, and prints samples/s of both, their ratio, and the twin's accuracy and agreement
with the trained model on all its samples. Timings include Lava's compilation and start-up.

Lava runs `Conv` stages with `procs.conv_exact` (Lava's own sums, as one matrix product);
``--lava-reference-samples N`` also plays N samples with Lava's own `PyConvModelFixed` and
reports its speed and whether its readout and spike counts equal the fast model's.
"""
from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--lava-samples", type=int, default=20)
    p.add_argument("--emulate-samples", type=int, default=10000)
    p.add_argument("--calibration", type=int, default=1000)
    p.add_argument("--lava-reference-samples", type=int, default=0,
                   help="also run this many samples with Lava's own Conv model (slow) and compare")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)

    import numpy as np

    from neurohebb.backends.lava.deploy import model_predictions
    from neurohebb.backends.lava.sd_circuit import run_lava_sd
    from neurohebb.backends.lava.sigma_delta import emulate, map_sigma_delta
    from neurohebb.data import load_dataset
    from neurohebb.description import describe
    from neurohebb.engine import load_run

    config, net = load_run(args.run_dir)
    n = max(args.lava_samples, args.emulate_samples)
    data = load_dataset(config.data.dataset, args.data_dir or config.data.data_dir, train_subset=args.calibration,
                        test_subset=n)
    x, y = np.asarray(data.x_test[:n]), np.asarray(data.y_test[:n])
    sd = map_sigma_delta(describe(net), np.asarray(data.x_train[:args.calibration]))
    model = model_predictions(net, x)
    t0 = time.perf_counter()
    twin = emulate(sd, x[:args.emulate_samples], per_neuron=False)
    t_twin = time.perf_counter() - t0
    result = {"emulate_samples": args.emulate_samples,
              "emulator_samples_per_second": round(args.emulate_samples / t_twin, 2),
              "emulator_accuracy": round(100 * float((twin.predictions == y[:args.emulate_samples]).mean()), 3),
              "model_accuracy": round(100 * float((model[:args.emulate_samples] == y[:args.emulate_samples]).mean()), 3),
              "emulator_model_agreement": round(float((twin.predictions == model[:args.emulate_samples]).mean()), 5)}
    if args.lava_samples > 0:
        k = args.lava_samples
        run, timing = run_lava_sd(sd, x[:k], progress=True)
        short = emulate(sd, x[:k])
        result.update({
            "lava_samples": k,
            "lava_samples_per_second": round(k / timing.run_seconds, 3),
            "lava_accuracy": round(100 * float((run.predictions == y[:k]).mean()), 3),
            "lava_model_agreement": round(float((run.predictions == model[:k]).mean()), 5),
            "emulator_equals_lava_readout": bool(np.array_equal(short.readout, run.readout)),
            "emulator_equals_lava_counts": bool(all(np.array_equal(a, b) for a, b in zip(short.counts, run.counts))),
        })
        result["speed_ratio_emulator_over_lava"] = round(result["emulator_samples_per_second"]
                                                         / result["lava_samples_per_second"], 1)
        result["spikes_per_sample_by_stage"] = {st.name: round(float(c.sum(axis=1).mean()), 1)
                                                for st, c in zip(sd.stages, run.counts)}
    if args.lava_reference_samples > 0:
        k = min(args.lava_reference_samples, args.lava_samples) if args.lava_samples > 0 else args.lava_reference_samples
        ref, ref_timing = run_lava_sd(sd, x[:k], progress=True, conv_model="lava")
        fast = emulate(sd, x[:k])
        result.update({
            "lava_reference_samples": k,
            "lava_reference_samples_per_second": round(k / ref_timing.run_seconds, 4),
            "lava_reference_equals_emulator": bool(np.array_equal(ref.readout, fast.readout)
                                                   and all(np.array_equal(a, b) for a, b in zip(ref.counts, fast.counts))),
        })
    print(json.dumps(result, indent=2))
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
