"""`neurohebb export nir RUN_DIR -o net.nir`: the trained network as a NIR graph."""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a trained network (NIR)",
                              description="Write a trained run directory's network in an exchange format.")
    targets = p.add_subparsers(dest="target", metavar="FORMAT")
    n = targets.add_parser("nir", help="the spiking network as a NIR graph (Conv2d/Affine, IF, AvgPool2d)",
                           description="Fold the run's blocks (Triangle power 1, BatchNorm, average pooling) into "
                                       "Conv2d/Affine + IF neurons + AvgPool2d and write a .nir file (HDF5); what "
                                       "NIR has no primitive for is named in the graph's metadata.")
    n.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by `neurohebb train`")
    n.add_argument("-o", "--out", required=True, metavar="FILE.nir", help="output file")
    n.add_argument("--calibration", type=int, default=1000, metavar="N",
                   help="training images that set each block's activation scale (default 1000)")
    n.add_argument("--data-dir", metavar="DIR", help="dataset folder (default: the run's)")
    n.set_defaults(func=run_nir)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_nir(args: argparse.Namespace) -> int:
    from ..backends.nir.export import export_run
    from ..errors import ConfigError

    if args.calibration < 1:
        raise ConfigError(f"--calibration must be >= 1, got {args.calibration}")
    summary = export_run(args.run_dir, args.out, calibration=args.calibration, data_dir=args.data_dir)
    print(json.dumps(summary, indent=2))
    return 0
