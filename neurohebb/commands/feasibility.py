"""`neurohebb feasibility`: can this network learn on a neuromorphic chip, and at what cost?

For every chip asked for (all known chips by default): how the layers map onto cores, whether
the learning engine can express each layer's plasticity (with the Lava rule string where it can),
and operation counts, energy and latency per inference and per training sample -- each figure
traced to the chip file's sources. Prints a report, writes feasibility.json and feasibility.png.
"""
from __future__ import annotations

import argparse

from ._common import add_config_arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "feasibility",
        help="map a network onto neuromorphic chips: cores, rule expressibility, energy and time",
        description="Report, for each chip, the mapping of every layer onto cores, whether the chip's learning engine "
                    "can express the layer's plasticity (exactly, approximately, or not at all, and why), and the "
                    "operations, energy and latency of one inference and one training sample. Every chip figure "
                    "comes from a file in hardware/ with its source; unknown figures give unknown results.",
    )
    add_config_arguments(p)
    p.add_argument("--checkpoint", metavar="RUN_DIR", help="a trained run directory: measure activity with its network (instead of --preset); "
                   "the report also states the accuracy the run measured on chip (train --on-chip) or that none was measured")
    p.add_argument("--control", metavar="RUN_DIR", help="with --checkpoint: a random-weights run of the same network "
                   "(train --set layers.0.rule=\"random\"), reported beside the measured accuracy as the measure of learning")
    chips = p.add_argument_group("chips (default: every known chip)")
    chips.add_argument("--chip", action="append", default=[], metavar="NAME", help="a known chip, e.g. loihi2 (repeatable; see --list-chips)")
    chips.add_argument("--chip-file", action="append", default=[], metavar="FILE.toml", help="your own chip description (see hardware/_template.toml; repeatable)")
    chips.add_argument("--all-chips", action="store_true", help="every known chip (the default when no chip is named)")
    chips.add_argument("--list-chips", action="store_true", help="list the known chips and exit")
    p.add_argument("--precision", metavar="SPEC", help="precision policy, e.g. 'weight=s8.7,post=u7.7', or a TOML file (default: the run's or config's [precision])")
    p.add_argument("--time-steps", type=int, default=32, metavar="T", help="time steps per sample for rate coding (default 32)")
    p.add_argument("--samples", type=int, default=64, metavar="N", help="test images used to measure activity (default 64)")
    p.add_argument("--activity", type=float, metavar="RATE", help="skip measuring: every input and neuron spikes with probability RATE per step")
    p.add_argument("--no-wta-circuit", action="store_true", help="do not count the inhibitory interneurons that build the soft WTA")
    out = p.add_argument_group("output")
    out.add_argument("-o", "--out", metavar="DIR", help="folder for feasibility.json and feasibility.png (default results/feasibility/<network>)")
    out.add_argument("--json", metavar="OUT", help="write the JSON report here instead")
    out.add_argument("--plot", metavar="PNG", help="write the figure here instead")
    out.add_argument("--verbose", action="store_true", help="also print exact terms and the trace recipes of Lava rules")
    p.set_defaults(func=run)


def _chips(args: argparse.Namespace):
    from ..feasibility.chips import load_all_chips, load_chip, load_chip_file

    chosen = [load_chip(name) for name in args.chip] + [load_chip_file(path) for path in args.chip_file]
    if args.all_chips or not chosen:
        names = {c.name for c in chosen}
        chosen += [c for c in load_all_chips() if c.name not in names]
    return chosen


def _policy(spec: str | None, config):
    """--precision, else the policy the network was trained with (its config's [precision])."""
    import sys

    from ..precision import PrecisionPolicy
    from ._common import precision_arg

    trained = PrecisionPolicy.parse(config.precision.policy)
    if spec is None:
        return trained
    policy = PrecisionPolicy.parse(precision_arg(spec, "--precision").get("policy", "float32"))
    if not trained.is_float and policy != trained:
        print(f"warning: --precision {policy} differs from the policy the network was trained with ({trained})",
              file=sys.stderr)
    return policy


def _list_chips() -> int:
    from ..feasibility.chips import chip_dirs, load_all_chips, template_path

    for chip in load_all_chips():
        print(f"{chip.name:<12} {chip.display_name:<18} {chip.path}")
    print(f"searched: {', '.join(str(d) for d in chip_dirs()) or 'no hardware folder found'}")
    template = template_path()
    if template:
        print(f"template for your own chip: {template}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import ConfigError
    from ..feasibility.analysis import analyse_config
    from ..feasibility.plots import save_report_figure
    from ..feasibility.report import render_text
    from ..rundir import check_can_create_dir, make_output_dir, write_json_atomic

    if args.list_chips:
        return _list_chips()
    if args.time_steps < 1:
        raise ConfigError(f"--time-steps must be >= 1, got {args.time_steps}")
    if args.samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {args.samples}")
    net = measured = None
    if args.control and not args.checkpoint:
        raise ConfigError("--control compares a run's measured accuracy with a random-weights run; give --checkpoint RUN_DIR as well")
    if args.checkpoint:
        if args.preset or args.config or args.overrides:
            raise ConfigError("give either --checkpoint RUN_DIR or --preset/--config/--set, not both: a checkpoint carries its own config")
        from ..engine import load_run

        from ..feasibility.measured import measured_accuracy

        config, net = load_run(args.checkpoint, "cpu")
        name = Path(args.checkpoint).name
        measured = measured_accuracy(args.checkpoint, config, args.control)  # a bad --control fails before the analysis
    else:
        from ._common import config_from_args

        config = config_from_args(args)
        name = config.preset
    chips = _chips(args)
    policy = _policy(args.precision, config)
    out_dir = Path(args.out) if args.out else Path("results") / "feasibility" / name
    json_path = Path(args.json) if args.json else out_dir / "feasibility.json"
    png_path = Path(args.plot) if args.plot else out_dir / "feasibility.png"
    for path in (json_path, png_path):  # before the analysis, so a bad path costs nothing
        if path.is_dir():
            raise ConfigError(f"{path} is a folder; give a file name for --json/--plot, or use --out DIR")
        check_can_create_dir(path.parent)
    report = analyse_config(
        config, chips, policy, net=net, data_dir=args.data_dir, samples=args.samples, activity_rate=args.activity,
        seed=config.seed, time_steps=args.time_steps, wta=not args.no_wta_circuit, network=name,
    )
    if net is not None:  # the trained network: say which blocks deploy to Lava, as tested
        from ..backends.lava.deploy import deployment_status
        from ..description import describe

        report["deployment"] = deployment_status(describe(net))
    if measured is not None:
        report["measured"] = measured
    print(render_text(report, verbose=args.verbose), end="")
    if measured is not None:
        from ..feasibility.measured import render_measured

        print(render_measured(measured), end="")

    for path in (json_path, png_path):
        make_output_dir(path.parent)
    write_json_atomic(json_path, report)
    save_report_figure(report, png_path)
    print(f"wrote {json_path} and {png_path}")
    return 0
