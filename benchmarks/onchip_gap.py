"""Where does on-chip learning lose accuracy? The chip rule's algorithm in float, one constraint at a time.

The default on-chip rule (`harmonic-homeostasis`) is online k-means (MacQueen 1967): the winner of
each image moves its weights towards the image by 1/(n+1), n its earlier wins, at least a floor
(the chip's 3/127). This script runs that algorithm in float64 on the preset's layer and reads it
out with the preset's readout, as `neurohebb train` would, so its accuracy can be set beside the
chip's. Each switch adds one thing the chip does differently from textbook k-means:

    --winner distance|dot   nearest prototype (k-means), or the largest dot product with an
                            adaptive threshold (a spiking WTA's first-to-fire, --theta per win)
    --weight-levels L       weights on a grid of 1/L per unit input, updates rounded
                            stochastically (the chip's weight codes; 0 = float)
    --binary T              inputs thresholded at T (the chip's 7-bit input trace saturates)
    --co-learners M         the M best neurons all learn each image (a WTA whose inhibition
                            lands too late to stop near-ties)

Run: python benchmarks/onchip_gap.py --data-dir ../shared/data [--preset mnist-wta100] [--seed 0]
     [switches]; prints one JSON line (accuracy, active neurons, seconds).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from neurohebb import engine
from neurohebb.config import resolve_config
from neurohebb.network import HebbNetwork


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="mnist-wta100")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (e.g. readout.epochs=5)")
    p.add_argument("--floor", type=float, default=3 / 127, help="smallest learning rate (the chip's 3/127)")
    p.add_argument("--winner", choices=("distance", "dot"), default="distance")
    p.add_argument("--theta", type=float, default=0.06, help="dot winner: threshold raise per win, a fraction of the winning score")
    p.add_argument("--weight-levels", type=float, default=0.0)
    p.add_argument("--binary", type=float, default=None)
    p.add_argument("--co-learners", type=int, default=1)
    a = p.parse_args()

    overrides = [f"seed={a.seed}", *a.set]
    if a.data_dir:
        overrides.append(f"data.data_dir={a.data_dir!r}".replace("'", '"'))
    if a.train_subset:
        overrides.append(f"data.train_subset={a.train_subset}")
    cfg = resolve_config(a.preset, overrides=overrides)
    x_train, y_train, x_test, y_test = engine.dataset_tensors(engine.load_data_for(cfg))
    init_gen, order_gen = engine.seeded_generators(a.seed)
    net = HebbNetwork(cfg, num_classes=10, generator=init_gen)
    k = net.blocks[0].layer.weight.shape[0]
    x = x_train.reshape(len(x_train), -1).double() / 255.0
    if a.binary is not None:
        x = (x > a.binary).double()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(a.seed))
    rounding = torch.Generator().manual_seed(a.seed + 1)

    def on_grid(v: torch.Tensor) -> torch.Tensor:
        """Stochastic rounding to the weight grid (identity in float)."""
        if not a.weight_levels:
            return v
        q = v * a.weight_levels
        lo = torch.floor(q)
        return (lo + (torch.rand(q.shape, generator=rounding, dtype=torch.float64) < q - lo)) / a.weight_levels

    # prototypes start on k training images (the chip's first win imprints the image: rate 127/128)
    w = x[order[:k]].clone()
    if a.weight_levels:
        w = torch.round(w * a.weight_levels) / a.weight_levels
    wins = torch.ones(k, dtype=torch.float64)
    theta = torch.zeros(k, dtype=torch.float64)
    start = time.perf_counter()
    for i in order[k:].tolist():
        xi = x[i]
        score = w @ xi
        if a.winner == "distance":
            score = score - 0.5 * (w * w).sum(1)
        else:
            best = float(score.max())
            score = score - theta
            theta *= 1 - 1 / 512
        learners = score.topk(a.co_learners).indices.tolist()
        if a.winner == "dot":
            theta[learners[0]] += a.theta * best
        for j in learners:
            rate = max(1.0 / (float(wins[j]) + 1), a.floor)
            w[j] += on_grid(rate * (xi - w[j]))
            wins[j] += 1
    hebbian_s = time.perf_counter() - start
    with torch.no_grad():
        net.blocks[0].layer.weight.copy_(w.to(net.blocks[0].layer.weight.dtype))
    device = torch.device("cpu")
    features = engine.extract_features(net, x_train, device)
    test_features = engine.extract_features(net, x_test, device)
    engine.train_readout(net, features, y_train, cfg, order_gen, progress=False)
    print(json.dumps({"preset": a.preset, "seed": a.seed, "winner": a.winner, "weight_levels": a.weight_levels,
                      "binary": a.binary, "co_learners": a.co_learners, "floor": round(a.floor, 5),
                      "test_accuracy": round(engine.accuracy_from_features(net, test_features, y_test), 2),
                      "active_neurons": int((wins > 1).sum()), "hebbian_seconds": round(hebbian_s, 1)}))


if __name__ == "__main__":
    main()
