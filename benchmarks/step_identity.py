"""Bit-identity check of the plasticity steps across code changes (issue 18's speed work).

Why: the speed-ups of the float32 and fake-quant steps must not move a single bit. Run this
with `--save DIR` on the code before a change and `--compare DIR` after: every case trains a
network's Hebbian phase on a fixed subset (seed 0) and the final weights (the engine's exact
values too) and the quantised runs' diagnostics must be equal (`torch.equal`, `==` on JSON).

    python benchmarks/step_identity.py --root /tmp/nh-old --save /tmp/ref   # the old code's results
    (an old checkout outside this tree finds the data through NEUROHEBB_DATA_DIR=/path/to/shared/data)
    python benchmarks/step_identity.py --compare /tmp/ref                   # this checkout; exit 1 on a difference

Cases: mnist-mlp (2000 images) in float32 and under three policies -- the sweep's m8 point
(float input: float64 products needed), a fully quantised 12-bit-weight policy whose products
overflow float32's 24 bits, and an 8-bit nearest/pow2 policy -- plus mnist-conv (300 images)
in float32 and under a quantised policy, and one cifar10 block-1 float32 case (40 images).
mnist-mlp's float32 case runs torch's operators (`hebbian.linear_kernel=torch`, the only linear
step of older checkouts); "mlp-float32-compiled" is the compiled linear step, which agrees with it
to float32 rounding per step, so compare it only between checkouts that both have it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

# --root DIR imports neurohebb from another checkout (e.g. main, to --save its reference)
_root = sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv[:-1] else str(Path(__file__).resolve().parents[1])
sys.path.insert(0, _root)

from neurohebb.config import resolve_config  # noqa: E402
from neurohebb.engine import hebbian_phase, seeded_generators  # noqa: E402
from neurohebb.network import HebbNetwork  # noqa: E402
from neurohebb.steps import make_step  # noqa: E402

SWEEP = "weight=m8:stochastic,update=s16.14:stochastic"
FULL12 = "input=u8.8,post=s16.15:stochastic,update=s16.15:stochastic,lr=u16.16,weight=s12.11:stochastic"
NEAR8 = "input=u8.8,weight=s8.7:nearest,update=s12.11,norm=pow2"

# name: (preset, images, policy or None for float32, extra overrides)
CASES: dict[str, tuple[str, int, str | None, list[str]]] = {
    "mlp-float32": ("mnist-mlp", 2000, None, []),  # torch's operators (hebbian.linear_kernel=torch)
    "mlp-float32-compiled": ("mnist-mlp", 2000, None, ["hebbian.linear_kernel=compiled"]),
    "mlp-sweep-m8": ("mnist-mlp", 2000, SWEEP, []),
    "mlp-full12": ("mnist-mlp", 2000, FULL12, []),
    "mlp-near8-pow2": ("mnist-mlp", 2000, NEAR8, []),
    "conv-float32": ("mnist-conv", 300, None, []),
    "conv-sweep-m8": ("mnist-conv", 300, SWEEP, []),
    "cifar-b1-float32": ("cifar10", 40, None, []),
}


def images(dataset: str, n: int) -> torch.Tensor:
    from neurohebb.data import load_dataset

    return torch.from_numpy(load_dataset(dataset, train_subset=n).x_train)


def float32_step(config):
    """The float32 step with the case's linear kernel; torch's in checkouts older than the
    setting (which had only that one), so "mlp-float32" compares across them."""
    kernel = getattr(config.hebbian, "linear_kernel", None)
    return make_step(None) if kernel is None else make_step(None, linear_kernel="torch" if kernel == "auto" else kernel)


def run_case(name: str) -> tuple[dict[str, torch.Tensor], object, float]:
    preset, n, policy, overrides = CASES[name]
    config = resolve_config(preset, overrides=overrides, device="cpu")
    init_gen, order_gen = seeded_generators(0)
    step = make_step(policy, "fake-quant", seed=0) if policy else float32_step(config)
    net = HebbNetwork(config, generator=init_gen, step=step)
    if preset == "cifar10":  # block 1 only: the others cost minutes on 2 cores
        net.blocks = net.blocks[:1]
    x = images(config.data.dataset, n)
    seconds = hebbian_phase(net, x, config, torch.device("cpu"), order_gen, progress=False)
    out = {f"w{i}": b.layer.weight.detach().clone() for i, b in enumerate(net.blocks)}
    if policy:
        for i, b in enumerate(net.blocks):
            if b.layer.plastic:
                out[f"exact{i}"] = step.weight_values(b.layer).clone()
    diag = step.diagnostics() if policy else None
    return out, diag, seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", metavar="DIR")
    g.add_argument("--compare", metavar="DIR")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    p.add_argument("--root", default=_root, help="checkout whose neurohebb runs (default: this one)")
    args = p.parse_args()
    ok = True
    for name in args.cases.split(","):
        tensors, diag, seconds = run_case(name)
        if args.save:
            d = Path(args.save)
            d.mkdir(parents=True, exist_ok=True)
            torch.save(tensors, d / f"{name}.pt")
            (d / f"{name}.json").write_text(json.dumps(diag))
            print(f"{name:18s} saved ({seconds:.2f} s)")
            continue
        d = Path(args.compare)
        ref = torch.load(d / f"{name}.pt", weights_only=True)  # our own file: tensors only
        ref_diag = json.loads((d / f"{name}.json").read_text())
        same = set(ref) == set(tensors) and all(torch.equal(ref[k], tensors[k]) for k in ref)
        same_diag = json.loads(json.dumps(diag)) == ref_diag
        ok &= same and same_diag
        print(f"{name:18s} weights {'identical' if same else 'DIFFER'}  diagnostics {'identical' if same_diag else 'DIFFER'}  ({seconds:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
