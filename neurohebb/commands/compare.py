"""`neurohebb compare`: run a trained soft-WTA layer as spiking neurons and compare.

`compare brian2 RUN_DIR` runs a trained single-layer network (e.g. preset mnist-mlp) as a
stochastic spiking WTA in Brian2 and compares predictions, spikes and time with the rate model.
`compare brian2-learning` trains the same layer online with a spike-triggered SoftHebb rule and
compares it with the rate-based layer trained on the same samples.
"""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare the rate model with a spiking (Brian2) version",
                              description="Does the rate-based soft WTA survive spikes? Compare accuracy, spike counts and run time.")
    sub = p.add_subparsers(dest="backend", metavar="BACKEND")
    sub.required = True

    inf = sub.add_parser("brian2", help="inference with trained weights as a spiking stochastic WTA",
                         description="Run RUN_DIR's trained layer as Poisson inputs -> spiking soft-WTA neurons with global "
                                     "inhibition; the trained readout reads normalised spike counts. Writes metrics.json, "
                                     "presentation_sweep.csv, predictions.csv, raster.png and accuracy_vs_time.png.")
    inf.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of a single linear softmax layer (preset mnist-mlp)")
    inf.add_argument("--samples", type=int, default=500, metavar="N", help="first N test images (default 500)")
    inf.add_argument("--duration", type=float, default=200.0, metavar="MS", help="presentation time per image in ms (default 200)")
    inf.add_argument("-o", "--out", metavar="DIR", help="output folder (default RUN_DIR/brian2-compare)")
    inf.add_argument("--raster-samples", type=int, default=5, metavar="N", help="samples shown in raster.png (default 5)")
    inf.add_argument("--calibration", type=int, default=1000, metavar="N",
                     help="training images (never their labels) that calibrate a Triangle layer's gain (default 1000)")
    _add_circuit_arguments(inf)
    inf.set_defaults(func=run_inference)

    learn = sub.add_parser("brian2-learning", help="online spiking plasticity vs the rate-based layer",
                           description="Train a soft-WTA layer online with a spike-triggered SoftHebb rule in Brian2 and the "
                                       "rate-based layer on the same samples; score both with the same readout. Writes metrics.json.")
    learn.add_argument("--dataset", default="mnist", choices=("digits", "mnist", "fashion_mnist"))
    learn.add_argument("--train-samples", type=int, default=2000, metavar="N", help="first N training images, seen once (default 2000)")
    learn.add_argument("--test-samples", type=int, default=1000, metavar="N", help="first N test images (default 1000)")
    learn.add_argument("--neurons", type=int, default=100, metavar="K", help="soft-WTA neurons (default 100)")
    learn.add_argument("--lr", type=float, default=0.01, help="SoftHebb learning rate per sample, norm-adaptive (default 0.01)")
    learn.add_argument("--t-invert", type=float, default=12.0, help="inverse temperature of the learning soft WTA (default 12)")
    learn.add_argument("--readout-epochs", type=int, default=50, metavar="N", help="readout epochs (default 50)")
    learn.add_argument("--readout-activation", default="softmax", choices=("softmax", "triangle"),
                       help="what the readout reads: the soft WTA softmax(5u) (default) or Triangle(u)")
    learn.add_argument("--duration", type=float, default=100.0, metavar="MS", help="presentation time per image in ms (default 100)")
    learn.add_argument("--no-spiking-eval", action="store_true", help="skip running the learned layer as spikes on the test images")
    learn.add_argument("-o", "--out", metavar="DIR", help="output folder (default runs/brian2-learning-<dataset>-s<seed>)")
    _add_circuit_arguments(learn)
    learn.set_defaults(func=run_learning)


def _add_circuit_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("spiking circuit")
    g.add_argument("--input-rate", type=float, default=500.0, metavar="HZ", help="Poisson rate of a white pixel (default 500)")
    g.add_argument("--output-rate", type=float, default=1000.0, metavar="HZ",
                   help="softmax layers: total rate R of the WTA population (default 1000)")
    g.add_argument("--neuron-rate", type=float, default=20.0, metavar="HZ",
                   help="triangle layers: mean rate per neuron the gain is calibrated to on training images (default 20)")
    g.add_argument("--gain", type=float, default=0.0, metavar="HZ",
                   help="triangle layers: Hz per unit of activation, instead of calibrating it")
    g.add_argument("--tau-m", type=float, default=20.0, metavar="MS", help="membrane / trace time constant (default 20)")
    g.add_argument("--dt", type=float, default=0.5, metavar="MS", help="simulation time step (default 0.5)")
    g.add_argument("--target", default="auto", choices=("auto", "cython", "numpy"),
                   help="Brian2 code generation: cython when a compiler works (auto), else numpy")
    g.add_argument("--data-dir", metavar="DIR", help="dataset folder (default: the run's, or ../shared/data)")
    g.add_argument("--seed", type=int, default=0, help="random seed of the spike trains (default 0)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _circuit_params(args: argparse.Namespace):
    from ..backends.brian2 import CircuitParams

    if args.gain < 0:
        from ..errors import ConfigError

        raise ConfigError(f"--gain must be >= 0 (0 = calibrate), got {args.gain}")
    return CircuitParams(tau_m=args.tau_m / 1e3, input_rate=args.input_rate, output_rate=args.output_rate,
                         duration=args.duration / 1e3, dt=args.dt / 1e3, gain=args.gain,
                         neuron_rate=args.neuron_rate).validate()


def _progress_bar(args: argparse.Namespace, desc: str):
    from ..progress import tqdm

    bar = tqdm(total=1000, desc=desc, unit="‰", disable=args.no_progress, mininterval=1.0)
    return bar, lambda f: bar.update(int(round(1000 * f)) - bar.n)


def run_inference(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..backends.brian2 import compare_inference, select_target, write_inference_results
    from ..data import load_dataset
    from ..engine import load_run
    from ..errors import ConfigError

    if args.samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {args.samples}")
    if args.calibration < 1:
        raise ConfigError(f"--calibration must be >= 1, got {args.calibration}")
    params = _circuit_params(args)
    target = select_target(args.target)
    config, net = load_run(args.run_dir, "cpu")
    dc = config.data
    # training images (never their labels) calibrate a Triangle layer's gain
    dataset = load_dataset(dc.dataset, args.data_dir or dc.data_dir, train_subset=args.calibration, test_subset=args.samples)
    if dataset.x_test.shape[0] < args.samples:
        raise ConfigError(f"--samples {args.samples} exceeds the {dataset.x_test.shape[0]} test images of {dataset.name}")
    bar, report = _progress_bar(args, f"brian2 ({target})")
    metrics, record, arrays = compare_inference(net, dataset.x_test, dataset.y_test, params, seed=args.seed,
                                                calibration_images=dataset.x_train, raster_samples=args.raster_samples,
                                                progress=report)
    bar.close()
    metrics.update({"run_dir": str(args.run_dir), "preset": config.preset, "dataset": dataset.name})
    out = Path(args.out) if args.out else Path(args.run_dir) / "brian2-compare"
    write_inference_results(out, metrics, record, arrays)
    keys = ("samples", "test_accuracy", "reference_accuracy", "agreement", "output_spikes_per_sample",
            "input_spikes_per_sample", "seconds_per_sample", "target")
    print(json.dumps({k: metrics[k] for k in keys}, indent=2))
    print(f"results written to {out}")
    return 0


def run_learning(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..backends.brian2 import compare_learning, learning_config, select_target
    from ..data import load_dataset
    from ..errors import ConfigError
    from ..rundir import write_json_atomic

    for name in ("train_samples", "test_samples", "neurons", "readout_epochs"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    params = _circuit_params(args)
    target = select_target(args.target)
    config = learning_config(args.dataset, args.neurons, args.train_samples, args.test_samples, args.lr,
                             args.t_invert, args.readout_epochs, args.seed, args.data_dir, args.readout_activation)
    dc = config.data
    dataset = load_dataset(dc.dataset, dc.data_dir, train_subset=dc.train_subset, test_subset=dc.test_subset)
    bar = None
    state = {"stage": None}

    def report(stage: str, fraction: float) -> None:
        nonlocal bar
        if stage != state["stage"]:
            if bar is not None:
                bar.close()
            bar, state["update"] = _progress_bar(args, f"{stage} ({target})")
            state["stage"] = stage
        state["update"](fraction)

    metrics = compare_learning(config, dataset, params, spiking_eval=not args.no_spiking_eval, progress=report)
    if bar is not None:
        bar.close()
    out = Path(args.out) if args.out else Path("runs") / f"brian2-learning-{dataset.name}-s{args.seed}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {out}: {exc.strerror}; choose a writable --out") from None
    write_json_atomic(out / "metrics.json", metrics)
    summary = {k: metrics[k] for k in ("train_samples", "test_samples", "neurons", "target")}
    for side in ("rate", "spiking", "initial"):
        summary[side] = metrics[side]
    print(json.dumps(summary, indent=2))
    print(f"results written to {out / 'metrics.json'}")
    return 0
