"""Benchmark: mnist-mlp trained with 8-bit weights, deployed to Lava (fixed_pt), accuracy and speed.

    .venv/bin/python benchmarks/lava_deploy_mnist.py --data-dir ../shared/data --samples 500 --out runs/lava-mnist
    .venv/bin/python benchmarks/lava_deploy_mnist.py --data-dir ../shared/data --run-dir runs/lava-mnist/run \
        --wta spiking --steps 64 --spikes-target 2 --inhibition 2

Trains the `mnist-mlp` preset with the precision policy ``weight=m8:stochastic`` (8-bit shared-
exponent weights, the format Lava stores with ``num_weight_bits=8``) unless ``--run-dir`` names an
existing run, then deploys it with `neurohebb.backends.lava.deploy.deploy_run` and prints a table:
Lava's accuracy, the model's accuracy on the same samples, their agreement, spikes, synaptic
operations and samples per second. Needs the MNIST shards (../shared/data) and a few CPU minutes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="dataset folder (default ../shared/data)")
    p.add_argument("--run-dir", default=None, help="deploy this run instead of training one")
    p.add_argument("--policy", default="weight=m8:stochastic", help="precision policy for training (default weight=m8:stochastic)")
    p.add_argument("--samples", type=int, default=500)
    p.add_argument("--steps", type=int, default=32)
    p.add_argument("--spikes-target", type=float, default=4.0)
    p.add_argument("--inhibition", type=float, default=1.0)
    p.add_argument("--coding", default="rate")
    p.add_argument("--wta", default="currents", choices=("spiking", "currents"),
                   help="currents (default: softmax on the host, the >= 95 %% agreement setting) or spiking")
    p.add_argument("--tag", default="fixed_pt", choices=("fixed_pt", "floating_pt"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/lava-mnist", help="folder for the trained run and the deployment")
    args = p.parse_args(argv)

    from neurohebb.backends.lava.deploy import deploy_run

    out = Path(args.out)
    run_dir = Path(args.run_dir) if args.run_dir else out / "run"
    if args.run_dir is None and not (run_dir / "checkpoint.pt").is_file():
        from neurohebb.config import resolve_config
        from neurohebb.engine import train
        config = resolve_config("mnist-mlp", seed=args.seed, data__data_dir=args.data_dir,
                                precision={"policy": args.policy})
        _, train_metrics = train(config, run_dir, progress=True)
        train_metrics["precision_policy"] = config.precision.policy
        (out / "train_metrics.json").write_text(json.dumps(train_metrics, indent=2) + "\n")
        print(f"trained {run_dir}: test accuracy {train_metrics['test_accuracy']:.2f} % (all 10000 test images)")
    metrics = deploy_run(run_dir, samples=args.samples, steps=args.steps, tag=args.tag, coding=args.coding,
                         spikes_target=args.spikes_target, inhibition=args.inhibition, data_dir=args.data_dir,
                         seed=args.seed, wta=args.wta,
                         out_dir=out / f"deploy-{args.wta}-{args.tag}-{args.coding}-T{args.steps}")
    rows = [("wta mode", metrics["wta"]), ("samples", metrics["samples"]), ("Lava accuracy %", metrics["test_accuracy"]),
            ("model accuracy % (same samples)", metrics["model_accuracy"]), ("agreement", metrics["agreement"]),
            ("silent samples", metrics["silent_samples"]), ("spikes / sample", metrics["spikes_per_sample"]),
            ("synaptic ops / sample", metrics["synaptic_ops_per_sample"]),
            ("samples / s (Lava run)", metrics["samples_per_second"]), ("Lava run s", metrics["lava_run_seconds"]),
            ("twin agreement", metrics.get("emulation_prediction_agreement"))]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
