"""`neurohebb demo`: the two-minute tour on scikit-learn's bundled digits (no download)."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train the built-in digits network (no download) and print its accuracy",
                              description="Train the `digits` preset on scikit-learn's bundled 8x8 digits and write runs/demo.")
    p.add_argument("-o", "--out", default="runs/demo", metavar="RUN_DIR", help="run directory (default runs/demo, replaced if present)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import resolve_config
    from ..engine import train

    config = resolve_config("digits", seed=args.seed, device=args.device)
    _, metrics = train(config, args.out, progress=True, overwrite=True)
    print(f"\nSoftHebb on digits: test accuracy {metrics['test_accuracy']:.2f} % "
          f"({metrics['n_train']} train / {metrics['n_test']} test images, {metrics['total_seconds']:.1f} s on {metrics['device']})")
    print(f"results: {args.out}/metrics.json, receptive fields: {args.out}/receptive_fields.png")
    return 0
