"""Training STPN / LSTM / RNN sequence classifiers on the associative-retrieval task by BPTT.

The recipe is the STPN paper's (its code's ART configs): one-hot inputs, a recurrent layer, a
linear readout of the last hidden state over the 37 symbols, cross-entropy, Adam at 1e-3, batch
128, the model with the best validation accuracy kept. The paper trains up to 200 epochs on
100k sequences; `epochs` and `train_size` let a CPU run do less (the run records both).

A B-bit short-term state (`state_bits`) is set up in one of two ways:
- with `clamp`, the state's range is known before training, so the format follows from it
  (`format_for_clamp`: clamp 2 -> s8.6) and the model trains through the rounded state from the
  start (straight-through estimator), with the same epochs as a float run;
- without, training goes float -> observe the state's range on the validation set -> pick the
  B-bit format that holds it (`format_for_range`) -> evaluate as-is (post-training quantisation)
  -> fine-tune through the rounded state for `qat_epochs`. `test_accuracy` is then the quantised
  model's, with the float and PTQ numbers kept beside it.
"""
from __future__ import annotations

import copy
import dataclasses
import io
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..devices import resolve_device
from ..errors import ConfigError, NeurohebbError
from ..precision import ROUNDINGS, RoleSpec
from ..progress import tqdm
from ..atomic import replace_atomically
from ..rundir import StagedRunDir, write_json_atomic
from .layer import STPN
from .models import MODELS, SequenceClassifier, build_model, matched_hidden, parameter_count
from .precision import RangeObserver, STPNPrecision, format_for_clamp, format_for_range
from .tasks import PAPER_SIZES, VOCAB_SIZE, AssocRetrievalData, make_splits, one_hot

TASKS = ("assoc-retrieval",)
# The paper's STPN size on associative retrieval; baselines default to its parameter count.
PAPER_STPN_HIDDEN = 11
EVAL_BATCH = 2000


@dataclass
class STPNTrainConfig:
    """Everything a run depends on; saved with the run so it can be repeated."""

    task: str = "assoc-retrieval"
    model: str = "stpn"
    hidden: int | None = None  # None: STPN 11 (paper), baselines matched to STPN-11's parameters
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    train_size: int = PAPER_SIZES["train"]
    val_size: int = PAPER_SIZES["val"]
    test_size: int = PAPER_SIZES["test"]
    n_pairs: int = 3  # 3 pairs -> the paper's 9-character sequences
    data_seed: int = 0  # the dataset; fixed across model seeds
    seed: int = 0  # weight init and batch order
    clamp: float | None = None  # clamp the STPN's short-term state to +-clamp
    state_bits: int | None = None  # hold the short-term state in a signed fixed-point format
    state_format: str | None = None  # explicit format (e.g. "s8.6"): trains through it from the start
    state_rounding: str = "nearest"
    weight_format: str | None = None  # hold the STPN's long-term weight W in this format too
    qat_epochs: int = 3  # fine-tuning epochs through the rounded state (with state_bits)
    device: str = "auto"

    def resolved_hidden(self) -> int:
        if self.hidden is not None:
            return self.hidden
        if self.model == "stpn":
            return PAPER_STPN_HIDDEN
        target = parameter_count("stpn", VOCAB_SIZE, PAPER_STPN_HIDDEN, VOCAB_SIZE)
        return matched_hidden(self.model, target, VOCAB_SIZE, VOCAB_SIZE)

    def validate(self) -> None:
        for name in ("seed", "data_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer in [0, 2**63), got {value}")
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of: {', '.join(TASKS)}")
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of: {', '.join(MODELS)}")
        for name in ("epochs", "batch_size", "train_size", "val_size", "test_size", "n_pairs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.hidden is not None and self.hidden < 1:
            raise ConfigError(f"--hidden must be >= 1, got {self.hidden}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if self.qat_epochs < 0:
            raise ConfigError(f"--qat-epochs must be >= 0, got {self.qat_epochs}")
        quantised = self.state_bits is not None or self.state_format is not None or self.weight_format is not None
        if self.model != "stpn" and (quantised or self.clamp is not None):
            raise ConfigError("--state-bits, --state-format, --weight-format and --clamp apply to --model stpn only")
        if self.clamp is not None and not self.clamp > 0:
            raise ConfigError(f"--clamp must be > 0, got {self.clamp}")
        if self.state_bits is not None and self.state_bits < 2:
            raise ConfigError(f"--state-bits must be >= 2 (a sign bit and at least one more), got {self.state_bits}")
        if self.state_format is not None:
            fmt = STPNPrecision(state=self.state_format).state.fmt  # parses, raises ConfigError
            if self.state_bits is not None and (fmt.is_float or fmt.bits != self.state_bits):
                raise ConfigError(f"--state-format {self.state_format} does not have --state-bits {self.state_bits}; give one of them")
        if self.state_rounding not in ROUNDINGS:
            raise ConfigError(f"--state-rounding {self.state_rounding!r} is unknown; choose one of: {', '.join(ROUNDINGS)}")
        if self.weight_format is not None:
            RoleSpec.from_value(self.weight_format, "weight")  # parses, raises ConfigError

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "STPNTrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown STPN run setting {unknown[0]!r} in a saved config; is this run from a newer neurohebb?")
        return cls(**data)


@torch.no_grad()
def evaluate(model: SequenceClassifier, x_tokens: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH) -> tuple[float, float]:
    """(accuracy in %, mean energy proxy per sequence) over a split, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct, energy = 0, 0.0
    for start in range(0, x_tokens.shape[0], batch_size):
        xb = one_hot(x_tokens[start : start + batch_size].to(device))
        logits, e = model.forward_with_energy(xb)
        correct += int((logits.argmax(dim=1) == y[start : start + batch_size].to(device)).sum())
        energy += float(e.double().sum())
    model.train(was_training)
    n = max(1, x_tokens.shape[0])
    return 100.0 * correct / n, energy / n


@torch.no_grad()
def observe_state_range(model: SequenceClassifier, x_tokens: torch.Tensor, batch_size: int = EVAL_BATCH) -> float:
    """Largest |F| the STPN's short-term state reaches on these sequences (float model)."""
    unit = model.recurrent
    if not isinstance(unit, STPN):
        raise NeurohebbError("only an STPN has a short-term state to observe")
    saved, observer = unit.quantizer, RangeObserver()
    unit.quantizer = observer
    try:
        device = next(model.parameters()).device
        for start in range(0, x_tokens.shape[0], batch_size):
            model(one_hot(x_tokens[start : start + batch_size].to(device)))
    finally:
        unit.quantizer = saved
    return observer.max_abs.get("state", 0.0)


def _fit(
    model: SequenceClassifier,
    data: AssocRetrievalData,
    cfg: STPNTrainConfig,
    epochs: int,
    phase: str,
    generator: torch.Generator,
    progress: bool,
    history: list[dict[str, Any]],
    start_val: float | None = None,
) -> tuple[float, int]:
    """Adam on cross-entropy for `epochs`; keeps (in `model`) the weights of the best validation
    epoch and returns (best validation accuracy, its epoch number in `history`).

    `start_val`: the validation accuracy of the weights `model` starts from; they stay the
    candidate to beat (epoch number `len(history)`), so fine-tuning can never end worse on
    validation than where it started."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    n = x_train.shape[0]
    steps = math.ceil(n / cfg.batch_size)
    best_acc, best_epoch, best_state = -1.0, len(history), None
    if start_val is not None:
        best_acc, best_state = start_val, copy.deepcopy(model.state_dict())
    bar = tqdm(total=epochs * steps, desc=f"{cfg.model} {phase}", disable=not progress, leave=False)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            yb = y_train[idx]
            logits = model(one_hot(x_train[idx]))
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().double() * idx.numel()
            correct += (logits.detach().argmax(dim=1) == yb).sum()
            bar.update(1)
        train_loss = float(loss_sum) / n
        if not math.isfinite(train_loss):
            raise NeurohebbError(f"training loss became {train_loss} in epoch {epoch + 1}; lower --lr or set --clamp")
        val_acc, _ = evaluate(model, data.x_val, data.y_val)
        history.append(
            {
                "epoch": len(history) + 1,
                "phase": phase,
                "train_loss": train_loss,
                "train_accuracy": 100.0 * int(correct) / n,
                "val_accuracy": val_acc,
                "seconds": time.perf_counter() - t0,
            }
        )
        bar.set_postfix_str(f"loss {train_loss:.3f} val {val_acc:.1f}%")
        if val_acc > best_acc:
            best_acc, best_epoch, best_state = val_acc, len(history), copy.deepcopy(model.state_dict())
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return best_acc, best_epoch


def train(cfg: STPNTrainConfig, out_dir: str | Path | None = None, *, progress: bool = True, overwrite: bool = False) -> tuple[SequenceClassifier, dict[str, Any]]:
    """Train one model as `cfg` says; write the run directory to `out_dir` when given.

    Returns (model with its best weights, metrics). The run directory holds config.json,
    metrics.json, model.pt and learning_curve.png, written only once the run succeeded.
    """
    cfg.validate()
    if out_dir is not None:
        with StagedRunDir(out_dir, overwrite=overwrite) as staging:
            model, metrics = _train(cfg, progress)
            write_run(staging, cfg, model, metrics)
        return model, metrics
    return _train(cfg, progress)


def _train(cfg: STPNTrainConfig, progress: bool) -> tuple[SequenceClassifier, dict[str, Any]]:
    t_start = time.perf_counter()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    order_gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)
    data = make_splits(cfg.data_seed, train_size=cfg.train_size, val_size=cfg.val_size, test_size=cfg.test_size, n_pairs=cfg.n_pairs)
    hidden = cfg.resolved_hidden()
    precision = None
    state_format = cfg.state_format
    if state_format is None and cfg.state_bits is not None and cfg.clamp is not None:
        state_format = str(format_for_clamp(cfg.clamp, cfg.state_bits))
    if state_format is not None or cfg.weight_format is not None:
        state = None if state_format is None else f"{state_format}:{cfg.state_rounding}"
        precision = STPNPrecision(state=state, weight=cfg.weight_format, seed=cfg.seed)
    model = build_model(cfg.model, VOCAB_SIZE, hidden, VOCAB_SIZE, clamp=cfg.clamp, quantizer=precision).to(device)
    history: list[dict[str, Any]] = []
    best_val, best_epoch = _fit(model, data, cfg, cfg.epochs, "float" if precision is None else "quantised", order_gen, progress, history)
    test_acc, energy = evaluate(model, data.x_test, data.y_test)
    metrics: dict[str, Any] = {
        "task": cfg.task,
        "model": cfg.model,
        "hidden": hidden,
        "parameter_count": sum(p.numel() for p in model.parameters()),
        "test_accuracy": test_acc,
        "energy_per_sequence": energy,
        "best_val_accuracy": best_val,
        "best_epoch": best_epoch,
        "state_format": str(precision.state) if precision is not None else "float32",
        "weight_format": str(precision.weight) if precision is not None else "float32",
    }
    if cfg.state_bits is not None and state_format is None:
        metrics.update(float_test_accuracy=test_acc, float_energy_per_sequence=energy, float_best_epoch=best_epoch)
        metrics.update(_quantise_state(model, data, cfg, order_gen, progress, history))
    metrics.update(
        {
            "history": history,
            "epochs_run": len(history),
            "sizes": {"train": cfg.train_size, "val": cfg.val_size, "test": cfg.test_size},
            "sequence_length": data.x_train.shape[1],
            "seconds": time.perf_counter() - t_start,
            "device": str(device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "config": cfg.to_dict(),
        }
    )
    return model, metrics


def _quantise_state(
    model: SequenceClassifier, data: AssocRetrievalData, cfg: STPNTrainConfig, order_gen: torch.Generator, progress: bool, history: list
) -> dict[str, Any]:
    """Float model -> B-bit state: choose the format from the observed range, PTQ, then QAT."""
    unit = model.recurrent
    assert isinstance(unit, STPN) and cfg.state_bits is not None
    max_abs = observe_state_range(model, data.x_val)
    fmt = format_for_range(max_abs, cfg.state_bits)
    unit.quantizer = STPNPrecision(state=f"{fmt}:{cfg.state_rounding}", weight=cfg.weight_format, seed=cfg.seed)
    ptq_acc, _ = evaluate(model, data.x_test, data.y_test)
    ptq_val, _ = evaluate(model, data.x_val, data.y_val)
    best_val, best_epoch = ptq_val, len(history)
    if cfg.qat_epochs:
        best_val, best_epoch = _fit(model, data, cfg, cfg.qat_epochs, "qat", order_gen, progress, history, start_val=ptq_val)
    test_acc, energy = evaluate(model, data.x_test, data.y_test)
    return {
        "ptq_test_accuracy": ptq_acc,
        "ptq_val_accuracy": ptq_val,
        "test_accuracy": test_acc,
        "energy_per_sequence": energy,
        "state_max_abs": max_abs,
        "state_format": str(unit.quantizer.state),
        "weight_format": str(unit.quantizer.weight),
        "qat_best_val_accuracy": best_val,
        "best_epoch": best_epoch,
    }


# ---------------------------------------------------------------------------------------------
# Run directories


def write_run(directory: str | Path, cfg: STPNTrainConfig, model: SequenceClassifier, metrics: dict[str, Any]) -> None:
    from .plots import plot_learning_curve

    directory = Path(directory)
    write_json_atomic(directory / "config.json", cfg.to_dict())
    write_json_atomic(directory / "metrics.json", metrics)
    checkpoint = {
        "config": json.dumps(cfg.to_dict()),
        "hidden": metrics["hidden"],
        "state_format": metrics["state_format"],
        "weight_format": metrics["weight_format"],
        "model_state": model.state_dict(),
    }
    buffer = io.BytesIO()  # in memory first: torch's file writer hides a full disk's errno
    torch.save(checkpoint, buffer)
    replace_atomically(directory / "model.pt", lambda tmp: tmp.write_bytes(buffer.getbuffer()))
    title = f"{cfg.model.upper()} (H={metrics['hidden']}, {metrics['parameter_count']} params), test {metrics['test_accuracy']:.1f}%"
    plot_learning_curve(metrics["history"], directory / "learning_curve.png", title)


def load_run(run_dir: str | Path, device: str = "cpu") -> tuple[STPNTrainConfig, SequenceClassifier]:
    """(config, model with its stored weights and state format) of a run directory."""
    run_dir = Path(run_dir)
    path = run_dir / "model.pt"
    if not path.is_file():
        raise NeurohebbError(f"{run_dir} has no model.pt; pass a directory written by `neurohebb stpn train --out`")
    from ..safeload import load_tensors_file, require_tensor_dict

    fix = "re-run `neurohebb stpn train`"
    ckpt = load_tensors_file(path, fix, resolve_device(device))
    try:
        if not isinstance(ckpt, dict):
            raise TypeError(f"the file holds a {type(ckpt).__name__}, not a table")
        cfg = STPNTrainConfig.from_dict(json.loads(ckpt["config"]))
        formats = (str(ckpt["state_format"]), str(ckpt["weight_format"]))
        hidden = ckpt["hidden"]
        if isinstance(hidden, bool) or not isinstance(hidden, int) or not 1 <= hidden <= 1_000_000:
            raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
        state = require_tensor_dict(path, "model_state", ckpt["model_state"], fix)
    except KeyError as exc:
        raise NeurohebbError(f"{path} has no {exc.args[0]!r} entry; it is not an STPN run, {fix}") from None
    except (TypeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        raise NeurohebbError(f"{path} is damaged ({' '.join(str(exc).split())}); {fix}") from None
    precision = None
    if formats != ("float32", "float32"):
        precision = STPNPrecision(state=formats[0], weight=formats[1], seed=cfg.seed)
    model = build_model(cfg.model, VOCAB_SIZE, hidden, VOCAB_SIZE, clamp=cfg.clamp, quantizer=precision)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise NeurohebbError(f"{path} does not match its own config ({str(exc).splitlines()[-1].strip()}); {fix}") from None
    return cfg, model.to(resolve_device(device))
