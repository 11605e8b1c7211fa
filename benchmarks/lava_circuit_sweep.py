"""Benchmark: choose the WTA circuit's free parameters on *training* images with the NumPy twin.

    .venv/bin/python benchmarks/lava_circuit_sweep.py RUN_DIR --images 2000 [--data-dir ../shared/data]

For each combination of steps per sample, spikes_target and inhibition, runs the fixed-point
emulation of the deployed circuit (bit-identical to Lava, see tests/test_lava_mapping.py) on
training images and prints how often its prediction agrees with the neurohebb model and how
often it is right, plus spikes per sample. Test images are never used, so the chosen setting
can be reported on the test set without having been tuned to it.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--images", type=int, default=2000, help="training images evaluated (after the calibration ones)")
    p.add_argument("--calibration", type=int, default=1000)
    p.add_argument("--steps", type=int, nargs="+", default=[16, 32, 64])
    p.add_argument("--spikes-target", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    p.add_argument("--inhibition", type=float, nargs="+", default=[0.5, 1.0])
    p.add_argument("--coding", nargs="+", default=["rate"])
    p.add_argument("--wta", nargs="+", default=["spiking"], choices=("spiking", "currents"))
    p.add_argument("--tag", default="fixed_pt")
    args = p.parse_args(argv)


    from neurohebb.backends.lava.deploy import model_predictions
    from neurohebb.backends.lava.emulate import emulate
    from neurohebb.backends.lava.mapping import WTACircuit, map_network
    from neurohebb.data import load_dataset
    from neurohebb.engine import load_run

    config, net = load_run(args.run_dir)
    ds = load_dataset(config.data.dataset, args.data_dir or config.data.data_dir,
                      train_subset=args.calibration + args.images, test_subset=1)
    calib = ds.x_train[: args.calibration]
    x, y = ds.x_train[args.calibration:], ds.y_train[args.calibration:]
    model = model_predictions(net, x)
    print(f"model accuracy on these {len(x)} training images: {100 * (model == y).mean():.2f} %")
    print(f"{'wta':>8} {'coding':>7} {'steps':>5} {'target':>6} {'inhib':>5} | {'agree %':>7} {'acc %':>6} {'silent':>6} "
          f"{'WTA spk':>7} {'in spk':>7} {'sec':>5}")
    for wta, coding, steps, target, inhibition in itertools.product(args.wta, args.coding, args.steps,
                                                                     args.spikes_target, args.inhibition):
        if wta == "currents" and (target, inhibition) != (args.spikes_target[0], args.inhibition[0]):
            continue  # the integrators have no threshold or inhibition to vary
        circuit = WTACircuit(steps=steps, coding=coding, spikes_target=target, inhibition=inhibition, wta=wta)
        lnet = map_network(net, calib, circuit)
        t0 = time.perf_counter()
        run = emulate(lnet, x, args.tag)
        pred = run.predictions
        print(f"{wta:>8} {coding:>7} {steps:>5} {target:>6g} {inhibition:>5g} | {100 * (pred == model).mean():7.2f} "
              f"{100 * (pred == y).mean():6.2f} {int(run.silent.sum()):>6} {run.counts.sum(1).mean():7.2f} "
              f"{run.input_spikes.mean():7.1f} {time.perf_counter() - t0:5.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
