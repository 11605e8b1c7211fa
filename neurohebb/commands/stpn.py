"""`neurohebb stpn`: train, evaluate and compare short-term plasticity neurons (STPN) on the
associative-retrieval task, with the short-term state optionally held at chip precision."""
from __future__ import annotations

import argparse
import json

MODEL_CHOICES = ("stpn", "lstm", "rnn")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_training_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("task and training")
    g.add_argument("--task", default="assoc-retrieval", choices=("assoc-retrieval",), help="sequence task (default assoc-retrieval)")
    g.add_argument("--epochs", type=_positive_int, default=20, help="training epochs (default 20; the paper allows up to 200)")
    g.add_argument("--batch-size", type=_positive_int, default=128, help="sequences per step (default 128, as the paper)")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3, as the paper)")
    g.add_argument("--train-size", type=_positive_int, default=100_000, help="training sequences (default 100000, as the paper)")
    g.add_argument("--val-size", type=_positive_int, default=10_000, help="validation sequences (default 10000)")
    g.add_argument("--test-size", type=_positive_int, default=20_000, help="test sequences (default 20000)")
    g.add_argument("--pairs", type=_positive_int, default=3, help="key/value pairs per sequence (default 3 = the paper's 9 characters)")
    g.add_argument("--seed", type=int, default=0, help="weight init and batch order (default 0)")
    g.add_argument("--data-seed", type=int, default=0, help="the generated dataset (default 0; keep it fixed across model seeds)")
    g.add_argument("--device", default="auto", metavar="auto|cpu|cuda[:N]", help="where to train (default auto)")
    g.add_argument("--threads", type=_positive_int, default=1,
                   help="torch CPU threads (default 1: these models are too small to gain from more, and threads contend on a busy CPU)")
    q = p.add_argument_group("STPN state precision")
    q.add_argument("--clamp", type=float, help="clamp the short-term state to [-C, C] after every update")
    q.add_argument("--state-bits", type=int, metavar="B",
                   help="hold the short-term state in B-bit signed fixed point. With --clamp C the format follows from C "
                        "(clamp 2, 8 bits -> s8.6) and training runs through the rounded state from the start; without, "
                        "train in float, pick the fractional bits from the state's range on the validation set, then "
                        "fine-tune through the rounded state for --qat-epochs")
    q.add_argument("--state-format", metavar="FMT", help="explicit state format such as s8.6 (trains through it from the start)")
    q.add_argument("--state-rounding", default="nearest", choices=("nearest", "stochastic", "truncate", "floor"),
                   help="rounding of the state after every update (default nearest)")
    q.add_argument("--weight-format", metavar="FMT", help="also hold the long-term weight W in this format, e.g. s8.6")
    q.add_argument("--qat-epochs", type=int, default=3, help="fine-tuning epochs through the rounded state with --state-bits (default 3)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "stpn", help="short-term plasticity neurons: train, eval, compare",
        description="Short-term plasticity neurons (Garcia Rodriguez, Guo & Moraitis, ICML 2022) on the associative-retrieval task.",
    )
    sub = p.add_subparsers(dest="stpn_command", metavar="SUBCOMMAND")

    t = sub.add_parser("train", help="train one model and write RUN_DIR",
                       description="Train an STPN, LSTM or RNN by backpropagation through time; writes RUN_DIR with "
                                   "metrics.json (test_accuracy in percent, parameter_count, energy_per_sequence, seconds, config), "
                                   "config.json, model.pt and learning_curve.png.")
    t.add_argument("--model", default="stpn", choices=MODEL_CHOICES, help="recurrent unit (default stpn)")
    t.add_argument("--hidden", type=_positive_int, help="neurons (default: STPN 11 as the paper; LSTM/RNN matched to its parameter count)")
    _add_training_arguments(t)
    t.add_argument("-o", "--out", metavar="RUN_DIR", help="run directory to create (default runs/stpn-<model>-s<seed>-<time>)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing RUN_DIR once the new run has finished")
    t.add_argument("--no-progress", action="store_true", help="hide progress bars")
    t.set_defaults(func=run_train)

    c = sub.add_parser("compare", help="train STPN, LSTM and RNN at matched parameter counts; write a table",
                       description="Train each model on the same data with the same settings, baselines sized to the STPN's "
                                   "parameter count; writes OUT/<model>/ runs and comparison.{csv,json,md,png}.")
    c.add_argument("--models", default="stpn,lstm,rnn", help="comma-separated models (default stpn,lstm,rnn)")
    c.add_argument("--stpn-hidden", type=_positive_int, default=11, help="STPN neurons; sets the parameter budget (default 11)")
    c.epilog = ("With --state-bits and --clamp, the STPN is trained twice from scratch, float and with the B-bit state; "
                "with --state-bits alone, one STPN run gives both rows (float, then quantised and fine-tuned).")
    _add_training_arguments(c)
    c.add_argument("-o", "--out", metavar="DIR", help="output directory (default runs/stpn-compare-s<seed>-<time>)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing DIR once all runs have finished")
    c.add_argument("--no-progress", action="store_true", help="hide progress bars")
    c.set_defaults(func=run_compare)

    e = sub.add_parser("eval", help="evaluate a trained run, optionally with its state rounded to a format",
                       description="Test accuracy and energy of RUN_DIR's model; --state-format / --state-bits evaluate it with "
                                   "the short-term state held in that format without retraining (post-training quantisation).")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--state-format", metavar="FMT", help="e.g. s8.6")
    e.add_argument("--state-bits", type=int, metavar="B",
                   help="B-bit format, fractional bits from the run's --clamp or else from the state's validation range")
    e.add_argument("--state-rounding", default="nearest", choices=("nearest", "stochastic", "truncate", "floor"))
    e.add_argument("--device", default="cpu", metavar="auto|cpu|cuda[:N]", help="where to evaluate (default cpu)")
    e.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (default 1)")
    e.set_defaults(func=run_eval)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _config(args: argparse.Namespace, model: str, hidden: int | None):
    import torch

    from ..stpn.training import STPNTrainConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    return STPNTrainConfig(
        task=args.task, model=model, hidden=hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        train_size=args.train_size, val_size=args.val_size, test_size=args.test_size, n_pairs=args.pairs,
        data_seed=args.data_seed, seed=args.seed, clamp=args.clamp, state_bits=args.state_bits,
        state_format=args.state_format, state_rounding=args.state_rounding, weight_format=args.weight_format,
        qat_epochs=args.qat_epochs, device=args.device,
    )


def _default_out(kind: str, seed: int):
    import time
    from pathlib import Path

    return Path("runs") / f"stpn-{kind}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_train(args: argparse.Namespace) -> int:
    from ..stpn.training import train

    cfg = _config(args, args.model, args.hidden)
    cfg.validate()
    out = args.out or _default_out(cfg.model, cfg.seed)
    _, metrics = train(cfg, out, progress=not args.no_progress, overwrite=args.overwrite)
    keys = ("model", "hidden", "parameter_count", "test_accuracy", "float_test_accuracy", "ptq_test_accuracy",
            "state_format", "energy_per_sequence", "best_epoch", "epochs_run", "seconds", "device")
    print(json.dumps({k: metrics[k] for k in keys if k in metrics}, indent=2))
    print(f"run written to {out}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from ..stpn.compare import format_table, run_comparison

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    base = _config(args, "stpn", None)
    out = args.out or _default_out("compare", base.seed)
    rows = run_comparison(base, out, models=models, stpn_hidden=args.stpn_hidden, progress=not args.no_progress, overwrite=args.overwrite)
    print(format_table(rows))
    print(f"comparison written to {out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from ..errors import ConfigError
    from ..stpn.layer import STPN
    from ..stpn.precision import STPNPrecision, format_for_clamp, format_for_range
    from ..stpn.tasks import make_splits
    from ..stpn.training import evaluate, load_run, observe_state_range

    if args.state_format and args.state_bits:
        raise ConfigError("give --state-format or --state-bits, not both")
    torch.set_num_threads(args.threads)
    cfg, model = load_run(args.run_dir, args.device)
    data = make_splits(cfg.data_seed, train_size=1, val_size=cfg.val_size, test_size=cfg.test_size, n_pairs=cfg.n_pairs)
    result: dict = {"model": cfg.model, "run_dir": str(args.run_dir)}
    if args.state_format or args.state_bits:
        unit = model.recurrent
        if not isinstance(unit, STPN):
            raise ConfigError(f"{args.run_dir} holds an {cfg.model.upper()}, which has no short-term state to quantise")
        weight = str(unit.quantizer.weight) if isinstance(unit.quantizer, STPNPrecision) else None
        unit.quantizer = None
        fmt = args.state_format
        if args.state_bits:
            result["state_max_abs"] = observe_state_range(model, data.x_val)
            fmt = str(format_for_clamp(cfg.clamp, args.state_bits) if cfg.clamp is not None
                      else format_for_range(result["state_max_abs"], args.state_bits))
        unit.quantizer = STPNPrecision(state=f"{fmt}:{args.state_rounding}", weight=weight, seed=cfg.seed)
        result["state_format"] = str(unit.quantizer.state)
    result["test_accuracy"], result["energy_per_sequence"] = evaluate(model, data.x_test, data.y_test)
    print(json.dumps(result, indent=2))
    return 0
