"""`neurohebb sweep`: accuracy lost to constrained precision, one command, resumable."""
from __future__ import annotations

import argparse

from ._common import add_config_arguments


def _int_list(text: str, name: str, allow_float: bool = False) -> list:
    from ..errors import ConfigError

    out = []
    for item in (t.strip() for t in text.split(",")):
        if allow_float and item.lower() in ("float", "float32"):
            out.append(None)
            continue
        try:
            out.append(int(item))
        except ValueError:
            hint = " or 'float'" if allow_float else ""
            raise ConfigError(f"{name}: {item!r} is not an integer{hint}; write e.g. {name} 16,8,4") from None
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="accuracy against weight/update bits and rounding, and of on-chip learning (resumable)",
        description=("Train every combination of weight bits, update bits, rounding mode and seed with the "
                     "Hebbian phase under that precision, plus a float32 run and post-training quantisation per "
                     "seed ('SoftHebb in chip formats': SoftHebb's own algorithm in the chip's number formats, not "
                     "the chip's learning engine); with --on-chip CHIP --rule NAME also a separate 'on-chip learning' "
                     "series and a random-weights control; write DIR/results.csv, DIR/results.json and "
                     "DIR/accuracy_vs_bits.png. Rerunning with the same --out skips finished points."),
        epilog="example: neurohebb sweep --preset mnist-mlp --weight-bits 16,8,6,4,3,2 --update-bits 16 "
               "--rounding nearest,stochastic --seeds 3 --out sweeps/mnist-mlp",
    )
    add_config_arguments(p)
    p.add_argument("--weight-bits", default="16,8,6,4,3,2", metavar="LIST",
                   help="weight bit widths of the 'SoftHebb in chip formats' series (default 16,8,6,4,3,2; "
                        "'none' with --on-chip: the on-chip series only)")
    p.add_argument("--update-bits", default="16", metavar="LIST",
                   help="bits of the normalised update, format sU.(U-2); 'float' for an unquantised update (default 16)")
    p.add_argument("--rounding", default="nearest,stochastic", metavar="LIST",
                   help="rounding of weights and updates: nearest, stochastic, truncate, floor (default nearest,stochastic)")
    p.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds per point: --seed, --seed+1, ... (default 1)")
    p.add_argument("--weight-format", choices=("shared", "fixed"), default="shared",
                   help="shared: B-bit mantissa with a per-layer exponent (Loihi-style, default); fixed: sB.(B-I)")
    p.add_argument("--weight-int-bits", type=int, default=1, metavar="I", help="integer bits (sign included) of fixed weights (default 1)")
    p.add_argument("--policy", default="float32", metavar="POLICY",
                   help="formats of the other roles, as a string such as 'input=u9.8,post=u16.16,lr=u16.16,norm=pow2' "
                        "or a TOML file with a [precision] table (default float32)")
    p.add_argument("--mode", choices=("fake-quant", "integer"), default="fake-quant",
                   help="fake-quant (float64 exact values, fast) or integer (bit-exact int64 engine); they agree exactly")
    p.add_argument("--stats-every", type=int, default=10, metavar="N",
                   help="record stalled-synapse statistics on every N-th Hebbian step (default 10; 1 = all)")
    p.add_argument("--keep-runs", action="store_true",
                   help="also write DIR/runs/POINT/ run directories (checkpoint, config) for eval and deploy")
    p.add_argument("--no-ptq", action="store_true", help="skip the post-training quantisation baseline")
    p.add_argument("--on-chip", metavar="CHIP", dest="on_chip", default="",
                   help="add a separate series trained with the chip's own learning engine (as `train --on-chip`), "
                        "one point per --rule and seed, plus a random-weights control per seed; e.g. loihi2")
    p.add_argument("--rule", metavar="LIST", default=None,
                   help="with --on-chip: rule names of neurohebb/onchip/rules.toml or rule strings, comma-separated "
                        "(default: the [onchip] rule of the config)")
    p.add_argument("-o", "--out", metavar="DIR", required=True, help="sweep directory (created; resumed when it exists)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: points one after another here (default); ray: each point a Ray task "
                        "(pip install 'neurohebb[ray]'); results land in --out either way")
    p.add_argument("--address", default=None, metavar="HOST:PORT",
                   help="with --executor ray: join the cluster started by `ray start --head` (or 'auto'); "
                        "default: a private local Ray instance")
    p.add_argument("--cpus-per-point", type=float, default=1.0, metavar="N", help="with --executor ray: CPUs per point (default 1)")
    p.add_argument("--gpus-per-point", type=float, default=0.0, metavar="F", help="with --executor ray: GPUs per point, fractions allowed (default 0)")
    p.add_argument("--max-retries", type=int, default=3, metavar="N",
                   help="with --executor ray: rerun a point whose worker died up to N times (default 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..precision.sweep import SweepPlan, format_summary, run_sweep
    from ..precision import PrecisionPolicy
    from ._common import config_from_args, precision_arg

    from ..sizes import check_fits_in_memory

    config = config_from_args(args)
    check_fits_in_memory(config)
    table = precision_arg(args.policy, "--policy")
    if "mode" in table or "stats_every" in table:
        raise ConfigError(f"--policy {args.policy}: give the engine with --mode and the sampling with --stats-every")
    base_policy = PrecisionPolicy.parse(table.get("policy", "float32"))
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    rules = [r.strip() for r in args.rule.split(",") if r.strip()] if args.rule else []
    if args.on_chip and not rules:
        rules = [config.onchip.rule]
    no_bits = args.weight_bits.strip().lower() == "none"
    if no_bits and not args.on_chip:
        raise ConfigError("--weight-bits none leaves nothing to sweep; give bit widths, or an on-chip series with --on-chip CHIP")
    plan = SweepPlan(
        config=config,
        weight_bits=[] if no_bits else _int_list(args.weight_bits, "--weight-bits"),
        onchip_chip=args.on_chip,
        onchip_rules=rules,
        update_bits=_int_list(args.update_bits, "--update-bits", allow_float=True),
        roundings=[r.strip() for r in args.rounding.split(",") if r.strip()],
        seeds=[config.seed + i for i in range(args.seeds)],
        weight_format=args.weight_format,
        weight_int_bits=args.weight_int_bits,
        base_policy=base_policy,
        mode=args.mode,
        ptq=not args.no_ptq,
        stats_every=args.stats_every,
        keep_runs=args.keep_runs,
    )
    from ..executors import make_executor

    executor = make_executor(args.executor, args.address, args.cpus_per_point, args.gpus_per_point, args.max_retries)
    results = run_sweep(plan, args.out, progress=not args.no_progress, executor=executor)
    print(format_summary(results))
    print(f"results written to {args.out}/results.csv, results.json, accuracy_vs_bits.png")
    return 0
