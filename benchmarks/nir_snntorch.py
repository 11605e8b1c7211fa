"""NIR export of a run, executed in snnTorch, compared with neurohebb's sigma-delta twin and model.

    .venv/bin/python benchmarks/nir_snntorch.py RUN_DIR --samples 1000 --steps 64

Exports RUN_DIR's network as a NIR graph (calibration on 1000 training images), writes it to a
temporary .nir file and reads it back, runs it in snnTorch (`backends.nir.consumer`) for
``--steps`` time steps per test image, and prints how often its class decision agrees with the
NumPy twin of the Lava sigma-delta circuit and with the trained model. Needs nir and snntorch.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--steps", type=int, nargs="+", default=[64])
    p.add_argument("--calibration", type=int, default=1000)
    args = p.parse_args(argv)

    import nir
    import numpy as np

    from neurohebb.backends.lava.deploy import model_predictions
    from neurohebb.backends.lava.sigma_delta import emulate, map_sigma_delta
    from neurohebb.backends.nir.consumer import snntorch_logits
    from neurohebb.backends.nir.export import to_nir
    from neurohebb.data import load_dataset
    from neurohebb.description import describe
    from neurohebb.engine import load_run

    config, net = load_run(args.run_dir)
    data = load_dataset(config.data.dataset, args.data_dir or config.data.data_dir, train_subset=args.calibration,
                        test_subset=args.samples)
    x, y = np.asarray(data.x_test[:args.samples]), np.asarray(data.y_test[:args.samples])
    spec = describe(net)
    calib = np.asarray(data.x_train[:args.calibration])
    path = Path(tempfile.mkdtemp()) / "net.nir"
    nir.write(path, to_nir(spec, calib, run_dir=args.run_dir))
    graph = nir.read(path)
    twin = emulate(map_sigma_delta(spec, calib), x).predictions
    model = model_predictions(net, x)
    result = {"samples": args.samples, "twin_accuracy": round(100 * float((twin == y).mean()), 3),
              "model_accuracy": round(100 * float((model == y).mean()), 3), "snntorch": []}
    for steps in args.steps:
        t0 = time.perf_counter()
        pred = snntorch_logits(graph, x, steps=steps).argmax(axis=1)
        result["snntorch"].append({
            "steps": steps, "seconds": round(time.perf_counter() - t0, 2),
            "accuracy": round(100 * float((pred == y).mean()), 3),
            "agreement_with_twin": round(float((pred == twin).mean()), 5),
            "agreement_with_model": round(float((pred == model).mean()), 5)})
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
