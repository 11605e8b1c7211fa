"""How faithful is the spiking soft WTA, and at what cost? A table over circuit parameters.

For a trained single-layer run (preset mnist-mlp), runs the Brian2 circuit on the first N test
images for every combination of input rate, membrane time constant and presentation time, and
prints agreement with the rate model, accuracy, spikes and wall time per sample. Accuracy for
shorter presentations comes from the same simulation (see `inference.presentation_sweep`).

    python benchmarks/brian2_inference_sweep.py RUN_DIR --samples 200 \
        --input-rates 200,1000 --tau-ms 20,50 --output-rates 1000 --duration-ms 200 [--target auto] [--csv out.csv]

The wall time per sample of a shorter window is the full presentation's, scaled by the window.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--input-rates", default="200,1000", help="Hz, comma separated")
    p.add_argument("--tau-ms", default="20,50", help="membrane time constants, comma separated")
    p.add_argument("--output-rates", default="1000", help="Hz, comma separated (softmax: total rate R; triangle: mean rate per neuron)")
    p.add_argument("--duration-ms", type=float, default=200.0, help="longest presentation; shorter ones are read from it")
    p.add_argument("--dt-ms", type=float, default=0.5)
    p.add_argument("--target", default="auto", choices=("auto", "cython", "numpy"))
    p.add_argument("--data-dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", help="also write the table here")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from neurohebb.backends.brian2 import CircuitParams, compare_inference, select_target
    from neurohebb.data import load_dataset
    from neurohebb.engine import load_run

    target = select_target(args.target)
    config, net = load_run(args.run_dir)
    ds = load_dataset(config.data.dataset, args.data_dir or config.data.data_dir, train_subset=1000, test_subset=args.samples)
    rows = []
    header = ("input_hz", "tau_ms", "output_hz", "window_ms", "agreement", "accuracy", "rate_accuracy", "out_spikes", "in_spikes", "s_per_sample")
    print(f"# {args.run_dir}: {args.samples} test images, target {target}, readout activation {net.blocks[0].cfg.activation}")
    print(" ".join(f"{h:>13}" for h in header))
    grid = itertools.product([float(r) for r in args.input_rates.split(",")], [float(t) for t in args.tau_ms.split(",")],
                             [float(r) for r in args.output_rates.split(",")])
    for rate, tau, out_rate in grid:
        params = CircuitParams(input_rate=rate, tau_m=tau / 1e3, output_rate=out_rate, neuron_rate=out_rate,
                               duration=args.duration_ms / 1e3, dt=args.dt_ms / 1e3)
        metrics, _, _ = compare_inference(net, ds.x_test, ds.y_test, params, seed=args.seed, raster_samples=0,
                                          calibration_images=ds.x_train, windows_ms=(25, 50, 100, 200, 400))
        in_per_ms = metrics["input_spikes_per_sample"] / metrics["duration_ms"]
        for r in metrics["presentation_sweep"]:
            row = (rate, tau, out_rate, r["window_ms"], r["agreement"], r["accuracy"], metrics["reference_accuracy"],
                   r["output_spikes_per_sample"], round(in_per_ms * r["window_ms"], 1),
                   round(metrics["seconds_per_sample"] * r["window_ms"] / metrics["duration_ms"], 4))
            rows.append(row)
            print(" ".join(f"{v:>13}" for v in row), flush=True)
    if args.csv:
        with open(Path(args.csv), "w", newline="") as fh:
            csv.writer(fh).writerows([header, *rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
