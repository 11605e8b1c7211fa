"""Speed of the quantised learning engines, and their exact agreement, at mnist-mlp size.

Prints a table: milliseconds per plasticity step (one batch of 10 through a 784 -> 2000 soft-WTA
layer) for the core float32 rule, the fake-quant engine under several policies and the integer
engine; then trains the same layer for --agree-steps steps in both engines under a fully
quantised policy and reports whether the weights are bit-identical.

    .venv/bin/python benchmarks/precision_engines.py [--steps 20] [--agree-steps 50] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch

from neurohebb.config import LayerConfig
from neurohebb.layers import SoftWTALinear
from neurohebb.steps import Float32Step
from neurohebb.steps.fakequant import FakeQuantEngine
from neurohebb.steps.integer import IntegerEngine

CHIP = "input=u9.8,post=u16.16,lr=u16.16,weight=m8:stochastic,update=s16.14:stochastic"
POLICIES = [
    ("fake-quant", "float32"),
    ("fake-quant", "weight=m8:nearest,update=s16.14:nearest"),
    ("fake-quant", "weight=m8:stochastic,update=s16.14:stochastic"),
    ("fake-quant", CHIP),
    ("integer", CHIP),
]


def layer(device: str) -> SoftWTALinear:
    cfg = LayerConfig(kind="linear", out_channels=2000, rule="softhebb", t_invert=12.0, lr=0.045,
                      init_radius=35.0, batchnorm=False)
    return SoftWTALinear(784, cfg, torch.Generator().manual_seed(0)).to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per row")
    parser.add_argument("--agree-steps", type=int, default=50, help="steps of the agreement check")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(1)
    batches = torch.rand(max(args.steps, args.agree_steps) + 1, 10, 784, generator=g).to(args.device)

    print(f"device {args.device}, torch threads {torch.get_num_threads()}, {args.steps} steps per row")
    print(f"{'engine':<12} {'policy':<78} {'ms/step':>8}")
    core, float_step = layer(args.device), Float32Step()
    float_step.step(core, batches[0])
    sync(args.device)
    t = time.perf_counter()
    for b in batches[1:args.steps + 1]:
        float_step.step(core, b)
    sync(args.device)
    print(f"{'core':<12} {'float32 (the engine rule)':<78} {(time.perf_counter() - t) / args.steps * 1e3:>8.1f}")
    for mode, policy in POLICIES:
        lay = layer(args.device)
        engine = (FakeQuantEngine if mode == "fake-quant" else IntegerEngine)(policy, seed=0, device=args.device)
        engine.attach(lay, 0)
        engine.step(lay, batches[0])
        sync(args.device)
        t = time.perf_counter()
        for b in batches[1:args.steps + 1]:
            engine.step(lay, b)
        sync(args.device)
        print(f"{mode:<12} {policy:<78} {(time.perf_counter() - t) / args.steps * 1e3:>8.1f}")

    weights = {}
    for cls in (FakeQuantEngine, IntegerEngine):
        lay = layer(args.device)
        engine = cls(CHIP, seed=7, device=args.device)
        engine.attach(lay, 0)
        for b in batches[:args.agree_steps]:
            engine.step(lay, b)
        weights[engine.mode] = engine.weight_values(lay)
        bits = engine.diagnostics()[0].get("datapath_bits")
    same = torch.equal(weights["fake-quant"], weights["integer"])
    print(f"\nagreement after {args.agree_steps} steps under {CHIP}: "
          f"{'bit-identical' if same else 'DIFFERENT'}; widest integer intermediate {bits} bits")


if __name__ == "__main__":
    main()
