"""`neurohebb deploy lava RUN_DIR`: run a trained network in Lava's Loihi 2 simulator.

Also `neurohebb deploy lava-learn RUN_DIR`: run the layer's plasticity as a Loihi learning rule
inside Lava, compare the weights with neurohebb's integer engine after every sample, and evaluate
the learned layer beside the weights it started from.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "deploy", help="deploy a trained network to a neuromorphic simulator (Lava)",
        description="Deploy a trained run directory to a simulator and compare it with the neurohebb model.",
    )
    targets = p.add_subparsers(dest="target", metavar="TARGET")
    lava = targets.add_parser(
        "lava", help="inference in Lava's Loihi 2 simulator (fixed or floating point)",
        description="Map the run's soft-WTA layer and readout to Lava processes (spike generator, 8-bit Dense, "
                    "LIF neurons with lateral inhibition, integrating readout), play N test samples and write "
                    "metrics.json (test_accuracy, agreement with the neurohebb model, spikes, synaptic operations, "
                    "samples/s) and raster.png.",
    )
    _common(lava)
    lava.add_argument("--samples", type=int, default=100, metavar="N", help="test samples to run (default 100)")
    lava.add_argument("--tag", choices=("fixed_pt", "floating_pt"), default="fixed_pt",
                      help="Lava process models: bit-accurate fixed point (default) or floating point")
    lava.add_argument("--wta", choices=("auto", "spiking", "currents", "sigma-delta"), default="auto",
                      help="circuit (default auto: what the network needs -- the spiking WTA for one softmax layer, "
                           "else sigma-delta for Triangle/conv networks that fold, else currents). spiking: the "
                           "single-layer WTA circuit runs on chip; currents: the chip integrates each neuron's input "
                           "current, the activation and readout run on the host; sigma-delta: every block as Sparse "
                           "synapses and sigma-delta ReLU neurons")
    lava.add_argument("--vth", type=int, default=1, metavar="V",
                      help="sigma-delta circuit: delta threshold of the hidden neurons in spike units "
                           "(default 1: every nonzero activation is sent)")
    lava.add_argument("--spikes-target", type=float, default=4.0, metavar="S",
                      help="winner spikes per sample the threshold is set for (default 4)")
    lava.add_argument("--inhibition", type=float, default=1.0, metavar="A",
                      help="lateral inhibition per spike, in thresholds (default 1: spiking max)")
    lava.add_argument("--calibration", type=int, default=1000, metavar="N",
                      help="training images that set the threshold (default 1000)")
    lava.add_argument("--no-emulation-check", action="store_true",
                      help="skip re-running the samples in the NumPy twin of the circuit")
    lava.set_defaults(func=run_inference)

    learn = targets.add_parser(
        "lava-learn", help="on-chip learning in Lava, compared with neurohebb's integer engine",
        description="Run the soft-WTA layer's plasticity as a Loihi2FLearningRule on a LearningDense process, "
                    "on N training samples, and compare Lava's weight trajectory with neurohebb's integer "
                    "implementation of the same rule on the same spikes, sample by sample as it runs. Then evaluates the "
                    "learned layer (features + the run's readout recipe) beside the weights it started from. Writes "
                    "learning.json, receptive_fields.png and learned_weights.npz.",
    )
    _common(learn)
    learn.add_argument("--samples", type=int, default=20, metavar="N", help="training samples to learn from (default 20)")
    learn.add_argument("--rule", default=None, metavar="DW",
                       help="dw rule string, e.g. '2^-2 * x1 * y0 - 2^-5 * w * y0' (the default)")
    learn.add_argument("--traces", default="x1=16:8", metavar="SPEC",
                       help="trace impulses and time constants, e.g. 'x1=16:8,y1=20:65536' (default x1=16:8); "
                            "tau 0 means the trace holds the impulse only in the step of a spike")
    learn.add_argument("--t-epoch", type=int, default=1,
                       help="learning epoch in time steps, 1 to the chip's maximum (Loihi 2: 63, from hardware/loihi2.toml; default 1)")
    learn.add_argument("--readout-subset", type=int, default=None, metavar="N",
                       help="training images the evaluation's readout learns from (default: the run's data.train_subset, else all)")
    learn.add_argument("--test-subset", type=int, default=None, metavar="N",
                       help="test images the learned and the initial layer are evaluated on (default: the run's, else all)")
    learn.add_argument("--no-eval", action="store_true", help="only compare Lava with the integer engine; skip the accuracy")
    learn.add_argument("--inhibition-path", default=None, metavar="PATH",
                       help="WTA inhibition: lateral (K x K WTA-to-WTA synapses, one step) or interneuron (two steps); "
                            "default: interneuron")
    learn.set_defaults(func=run_learning)
    p.set_defaults(func=lambda args: _missing_target(p))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by `neurohebb train`")
    p.add_argument("--steps", type=int, default=32, metavar="T", help="time steps per sample (default 32)")
    p.add_argument("--coding", choices=("rate", "poisson", "ttfs"), default="rate",
                   help="input spike code (default rate: deterministic regular trains)")
    p.add_argument("--weight-bits", type=int, default=None, metavar="B",
                   help="num_weight_bits of the synapses (default: the run's trained weight format, e.g. 8 for "
                        "weight=m8; 8 for a float-trained run); a value that differs from training is warned about")
    p.add_argument("--data-dir", metavar="DIR", help="dataset folder (default: the run's, or ../shared/data)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Poisson code and the learning rule (default 0)")
    p.add_argument("-o", "--out", metavar="DIR", help="output directory (default RUN_DIR/deploy-lava-<tag or learn>)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def weight_bits_for(run_dir: str, requested: int | None) -> int:
    """Lava's num_weight_bits for a run: its trained weight format unless overridden.

    Why: a run trained under `weight=m6` deployed with 8-bit synapses silently measures another
    network; the format is part of the run (`[precision]` in its config.toml).
    """
    import sys

    from ..config import config_from_dict, load_toml_dict
    from ..precision import PrecisionPolicy

    path = Path(run_dir) / "config.toml"
    fmt = PrecisionPolicy.parse(config_from_dict(load_toml_dict(path)).precision.policy).weight.fmt if path.is_file() else None
    trained = None if fmt is None or fmt.is_float else (fmt.bits if fmt.kind == "shared_exp" else None)
    if requested is None:
        return trained or 8
    if trained is not None and requested != trained:
        print(f"warning: --weight-bits {requested} differs from the run's trained weight format {fmt} "
              f"({trained} bits); the deployed synapses are not the trained ones", file=sys.stderr)
    return requested


def _missing_target(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _check_common(args: argparse.Namespace) -> None:
    from ..errors import ConfigError

    # --steps, --samples and --weight-bits are checked by the backend with the chip's limits
    if not 0 <= args.seed < 2**31:
        raise ConfigError(f"--seed must be in [0, 2**31), got {args.seed}")


def _run_config(run_dir: str):
    """The run's config (from config.toml), read before Lava is started."""
    from ..config import config_from_dict, load_toml_dict

    return config_from_dict(load_toml_dict(Path(run_dir) / "config.toml"))


def loihi2_epoch_max() -> int | None:
    """The longest learning epoch Loihi 2 supports, from its chip file (None when unknown)."""
    from ..feasibility.chips import load_chip

    value = load_chip("loihi2").get("learning", "learning_epoch_steps_max")
    return int(value) if value is not None else None


def run_inference(args: argparse.Namespace) -> int:
    from ..backends.lava.deploy import deploy_run

    _check_common(args)
    out = Path(args.out) if args.out else Path(args.run_dir) / f"deploy-lava-{args.tag}"
    metrics = deploy_run(
        args.run_dir, samples=args.samples, steps=args.steps, tag=args.tag, out_dir=out, coding=args.coding,
        spikes_target=args.spikes_target, inhibition=args.inhibition,
        num_weight_bits=weight_bits_for(args.run_dir, args.weight_bits),
        data_dir=args.data_dir, seed=args.seed, calibration=args.calibration, progress=not args.no_progress,
        check_emulation=not args.no_emulation_check, wta=None if args.wta == "auto" else args.wta, vth=args.vth,
    )
    keys = ("test_accuracy", "model_accuracy", "agreement", "silent_samples", "spikes_per_sample",
            "synaptic_ops_per_sample", "samples_per_second", "emulation_prediction_agreement",
            "emulation_readout_identical")
    print(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=2))
    print(f"results written to {out}")
    return 0


def run_learning(args: argparse.Namespace) -> int:
    from ..backends.lava.learning import learn_run, resolve_inhibition_path
    from ..errors import ConfigError

    _check_common(args)
    epoch_max = loihi2_epoch_max()
    if args.t_epoch < 1 or (epoch_max is not None and args.t_epoch > epoch_max):
        raise ConfigError(f"--t-epoch {args.t_epoch} is outside Loihi 2's learning epochs of 1 to {epoch_max} steps "
                          "(hardware/loihi2.toml: learning_epoch_steps_max); choose one in that range")
    if args.inhibition_path is not None:
        resolve_inhibition_path(args.inhibition_path)  # a bad value fails before the run loads
    out = Path(args.out) if args.out else Path(args.run_dir) / "deploy-lava-learn"
    result = learn_run(
        args.run_dir, samples=args.samples, steps=args.steps, coding=args.coding, rule=args.rule,
        traces=args.traces, t_epoch=args.t_epoch, num_weight_bits=weight_bits_for(args.run_dir, args.weight_bits),
        data_dir=args.data_dir, seed=args.seed, out_dir=out, evaluate=not args.no_eval,
        readout_subset=args.readout_subset, test_subset=args.test_subset, progress=not args.no_progress,
        inhibition_path=args.inhibition_path,
    )
    keys = ("identical", "max_abs_difference", "samples", "post_spikes", "inhibition_path", "synapses_changed", "lava_seconds",
            "initial_weights", "initial_test_accuracy", "learned_test_accuracy", "learning_gain")
    print(json.dumps({k: result[k] for k in keys if k in result}, indent=2))
    print(f"results written to {out}")
    return 0
