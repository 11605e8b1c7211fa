"""Training engine: Hebbian phase, frozen features, linear readout, evaluation, run directory.

The recipe follows Journe et al. (ICLR 2023): one unsupervised epoch at batch 10 with the
norm-dependent learning rate, then a linear classifier (Adam 1e-3, dropout, batch 64, lr halved at
fixed fractions of the epochs). One deliberate difference from the authors' script: the frozen
Hebbian features are computed once and cached instead of recomputed every readout epoch. With the
blocks frozen and in eval mode both give the same inputs to the classifier; caching removes ~98 %
of the readout's compute.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from .progress import tqdm

from .batches import BatchSource, TensorBatches
from .config import READOUT_KERNELS, RunConfig
from .devices import resolve_device
from .errors import ConfigError, NeurohebbError
from .memory import release_free_memory
from .readout import LinearReadoutAdam
from .network import HebbNetwork, save_checkpoint
from .rules import neuron_norms
from .rundir import StagedRunDir, write_json_atomic, write_text_atomic
from .steps import PlasticityStep, make_step

FEATURE_BATCH = 500


# ---------------------------------------------------------------------------------------------
# Devices and seeds


def seeded_generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Separate streams for weight init and data order, so changing one never shifts the other."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1_000_003)


def to_device_float(x_uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] on `device` (the models' input scale)."""
    return x_uint8.to(device, non_blocking=True).float().div_(255.0)


# ---------------------------------------------------------------------------------------------
# Phases


def _norm_gap(net: HebbNetwork) -> str:
    gaps = [float((neuron_norms(b.layer.weight) - 1).abs().mean()) for b in net.blocks]
    return " ".join(f"{g:.2g}" for g in gaps)


def _check_weights(net: HebbNetwork) -> None:
    for i, block in enumerate(net.blocks):
        if not bool(torch.isfinite(block.layer.weight).all()):
            cfg = block.cfg
            raise NeurohebbError(f"weights of layer {i} became NaN/Inf during Hebbian training (lr {cfg.lr}, t_invert {cfg.t_invert}, "
                                 f"{cfg.activation} {cfg.activation_param}); lower layers.{i}.lr or layers.{i}.t_invert")


def hebbian_phase(
    net: HebbNetwork,
    x_train: torch.Tensor | BatchSource,
    config: RunConfig,
    device: torch.device,
    order_generator: torch.Generator,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> float:
    """Unsupervised plasticity over the training images; returns wall seconds.

    "simultaneous": every block learns from each batch in one pass (the authors report it as
    good as greedy and faster). "greedy": block i learns for all epochs with blocks < i frozen.
    `x_train` is a uint8 tensor or a `BatchSource` (one pass of uint8 batches per `iter()`), which
    is how data that does not fit in memory (STL-10 unlabelled, ImageNet) streams in.
    """
    hc = config.hebbian
    plastic = [i for i, b in enumerate(net.blocks) if b.layer.plastic]
    if hc.epochs == 0 or not plastic:
        return 0.0
    start = time.perf_counter()
    source = TensorBatches(x_train, hc.batch_size, order_generator) if isinstance(x_train, torch.Tensor) else x_train
    stages = [list(range(len(net.blocks)))] if hc.mode == "simultaneous" else [[i] for i in plastic]
    net.train()
    for stage in stages:
        last = max(stage)
        steps = hc.epochs * len(source)
        desc = "hebbian" if len(stages) == 1 else f"hebbian layer {last}"
        bar = tqdm(total=steps, desc=desc, unit="batch", disable=not progress, mininterval=1.0)
        done = 0  # batches of this stage (a disabled progress bar does not count)
        for _ in range(hc.epochs):
            for batch in source:
                x = to_device_float(batch, device)
                with torch.no_grad():
                    for i, block in enumerate(net.blocks[: last + 1]):
                        if i in stage:
                            x = net.learn_block(i, x, propagate=i < last)
                        else:
                            block.eval()
                            x = block(x)
                            block.train()
                done += 1
                if on_step is not None:
                    on_step(done - 1)
                bar.update(1)
                if done % 200 == 0:
                    note = getattr(net.step, "progress_note", None)  # a step's own health figure
                    bar.set_postfix_str(note() if note is not None else f"|norm-1| {_norm_gap(net)}")
        bar.close()
    _check_weights(net)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


@torch.no_grad()
def extract_features(net: HebbNetwork, x: torch.Tensor, device: torch.device, progress: bool = False, desc: str = "features") -> torch.Tensor:
    """Frozen features of all images, computed once (kept on `device`).

    Written batch by batch into one preallocated tensor: collecting the batches and
    concatenating them held every feature twice at the end (cifar10: 2 x 4.9 GB of train
    features, the run's peak memory)."""
    net.eval()
    n = int(x.shape[0])
    out: torch.Tensor | None = None
    for start in tqdm(range(0, n, FEATURE_BATCH), desc=desc, disable=not progress, unit="batch", mininterval=1.0):
        chunk = net.features(to_device_float(x[start:start + FEATURE_BATCH], device))
        if out is None:
            out = torch.empty((n,) + tuple(chunk.shape[1:]), dtype=chunk.dtype, device=chunk.device)
        out[start:start + chunk.shape[0]] = chunk
        del chunk
    if out is None:  # no images: the width comes from one blank image
        width = net.features(to_device_float(torch.zeros((1,) + tuple(x.shape[1:]), dtype=x.dtype), device))
        out = width[:0].clone()
    release_free_memory()  # the batches' activation blocks, kept for reuse while the loop ran
    return out


@dataclass
class ReadoutResult:
    seconds: float
    train_accuracy: float
    final_loss: float
    kernel: str = "torch"  # which step trained it: "compiled" (readout_kernels) or "torch"


#: below this many cached feature values x epochs, `readout.kernel = "auto"` keeps torch's step: a
#: fresh machine's first compile of the kernels (~17 s here) would cost more than the step saves
#: (the demo's readout takes under a second; mnist-mlp's, 60,000 x 2,000 x 50 = 6e9, is above it)
AUTO_COMPILED_MIN_WORK = 2e9


def readout_compiled(kernel: str, cached: torch.Tensor | None, epochs: int) -> bool | None:
    """`LinearReadoutAdam(compiled=...)` for a `readout.kernel` choice and the cached features."""
    compiled = READOUT_KERNELS[kernel]
    if compiled is None and cached is not None and cached.numel() * epochs < AUTO_COMPILED_MIN_WORK:
        return False
    return compiled


def fit_readout(
    net: HebbNetwork,
    epoch_batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]],
    config: RunConfig,
    progress: bool = True,
    features_of: Callable[[torch.Tensor], torch.Tensor] | None = None,
    desc: str = "readout",
    rows_of: torch.Tensor | None = None,
) -> ReadoutResult:
    """The paper's classifier recipe: Adam, dropout, lr multiplied by `lr_gamma` at fixed
    fractions of the epochs. `epoch_batches()` yields one epoch of (input, label) batches;
    `features_of` turns an input batch into features (identity for cached features); with
    `rows_of` (the cached features) the batches are row indices into it instead."""
    rc = config.readout
    start = time.perf_counter()
    optimizer = LinearReadoutAdam(net.readout, lr=rc.lr, compiled=readout_compiled(rc.kernel, rows_of, rc.epochs))
    milestones = {int(rc.epochs * r) for r in rc.lr_milestones}
    correct = total = 0
    loss = float("nan")
    for epoch in tqdm(range(rc.epochs), desc=desc, unit="epoch", disable=not progress, mininterval=1.0):
        last_epoch = epoch == rc.epochs - 1
        correct = total = 0
        logits = batch_labels = None
        for xb, batch_labels in epoch_batches():
            if rows_of is not None:
                logits = optimizer.step_rows(rows_of, xb, batch_labels, rc.dropout)
            else:
                logits = optimizer.step(xb if features_of is None else features_of(xb), batch_labels, rc.dropout)
            if last_epoch:
                correct += int((logits.argmax(1) == batch_labels).sum())
                total += batch_labels.numel()
        if last_epoch and logits is not None:
            loss = optimizer.loss(logits, batch_labels)  # of the epoch's last batch
        if epoch + 1 in milestones:
            optimizer.lr *= rc.lr_gamma
    net.eval()
    if not bool(torch.isfinite(net.readout.weight).all()):
        raise NeurohebbError("the readout diverged (NaN/Inf weights); lower readout.lr")
    return ReadoutResult(time.perf_counter() - start, 100.0 * correct / max(total, 1), loss,
                         "compiled" if optimizer.compiled else "torch")


def train_readout(
    net: HebbNetwork,
    features: torch.Tensor,
    labels: torch.Tensor,
    config: RunConfig,
    order_generator: torch.Generator,
    progress: bool = True,
) -> ReadoutResult:
    """The readout on cached features, reshuffled by `order_generator` every epoch."""
    batch = config.readout.batch_size
    labels = labels.to(features.device)
    n = features.shape[0]

    def epoch_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(n, generator=order_generator).to(features.device)
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            yield idx, labels[idx]

    return fit_readout(net, epoch_batches, config, progress, rows_of=features)


@torch.no_grad()
def accuracy_from_features(net: HebbNetwork, features: torch.Tensor, labels: torch.Tensor) -> float:
    net.eval()
    preds = torch.cat([net.classify(features[s:s + 4096]).argmax(1) for s in range(0, features.shape[0], 4096)])
    return 100.0 * float((preds.cpu() == labels.cpu()).float().mean())


def evaluate(net: HebbNetwork, x: torch.Tensor, y: torch.Tensor, device: torch.device | None = None) -> float:
    """Test accuracy (%) of the whole network on uint8 images."""
    device = device or next(net.buffers()).device
    return accuracy_from_features(net, extract_features(net, x, device), y)


# ---------------------------------------------------------------------------------------------
# Whole runs


def load_data_for(config: RunConfig):
    from .data import load_dataset

    dc = config.data
    return load_dataset(dc.dataset, dc.data_dir, download=dc.download, train_subset=dc.train_subset, test_subset=dc.test_subset)


def dataset_tensors(dataset) -> tuple[torch.Tensor, ...]:
    arrays = (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)


def train(
    config: RunConfig,
    out_dir: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    dataset=None,
    step: PlasticityStep | None = None,
    control: bool = False,
) -> tuple[HebbNetwork, dict[str, Any]]:
    """Train a network end to end and, if `out_dir` is given, write a complete run directory.

    The run directory is staged and only appears when everything succeeded. ``control``: also
    measure the same network untrained (see `control_metrics`), so the run states what learning
    gained.
    """
    if out_dir is not None:
        with StagedRunDir(out_dir, overwrite=overwrite, kind="train") as staging:
            net, metrics = train_pipeline(config, progress, dataset, step, control)
            write_run(staging, config, net, metrics)
        return net, metrics
    return train_pipeline(config, progress, dataset, step, control)


def step_for(config: RunConfig, device: torch.device) -> PlasticityStep:
    """The plasticity step a run's `[precision]` table asks for; its stochastic rounding is
    seeded with the run's seed (its own stream: init and data order do not move with it)."""
    from .precision.policy import PrecisionPolicy

    pc = config.precision
    float_run = not config.onchip.enabled and PrecisionPolicy.parse(pc.policy).is_float
    hc = config.hebbian
    if (hc.correlation != "auto" or not hc.flush_tiny or hc.linear_kernel != "auto") and not float_run:
        raise ConfigError("hebbian.correlation, hebbian.flush_tiny and hebbian.linear_kernel set the float32 step's arithmetic; "
                          "quantised and on-chip runs sum in their own datapath: leave them at their defaults")
    if config.onchip.enabled:  # the chip's own learning engine (neurohebb.onchip)
        from .onchip.step import ChipStep

        return ChipStep(config, device)
    return make_step(pc.policy, pc.mode, seed=config.seed, device=device, stats_every=pc.stats_every,
                     correlation=hc.correlation, flush_tiny=hc.flush_tiny, linear_kernel=hc.linear_kernel)


def train_pipeline(
    config: RunConfig,
    progress: bool = True,
    dataset=None,
    step: PlasticityStep | None = None,
    control: bool = False,
) -> tuple[HebbNetwork, dict[str, Any]]:
    """The whole pipeline: data, Hebbian phase with the run's plasticity step (`step`, by default
    the one `config.precision` names), features, readout, evaluation; with ``control``, then the
    untrained control on the same data."""
    t0 = time.perf_counter()
    dataset = dataset if dataset is not None else load_data_for(config)
    net, metrics = _pipeline_on(config, progress, dataset, step, t0)
    if control:
        metrics.update(control_metrics(config, dataset, progress, metrics["test_accuracy"]))
    return net, metrics


def control_metrics(config: RunConfig, dataset, progress: bool, trained_accuracy: float) -> dict[str, Any]:
    """The run's learning control: the same network, seed, data and readout with the Hebbian phase
    skipped (``hebbian.epochs = 0``), so its layers keep their initial weights (for on-chip
    learning, the chip's quantised initial weights). Same code path and seeds as a separate
    ``--set hebbian.epochs=0`` run, hence the same accuracy; the difference is what learning gained.
    Why in the run: on large layers random features are already strong, and a trained accuracy
    reported without its control cannot say whether the rule learned."""
    t0 = time.perf_counter()
    untrained = replace(config, hebbian=replace(config.hebbian, epochs=0))
    _, m = _pipeline_on(untrained, progress, dataset, None, t0)
    return {
        "random_weights_test_accuracy": m["test_accuracy"],
        "learning_gain": round(trained_accuracy - m["test_accuracy"], 4),
        "control": {"what": "the same network untrained (hebbian.epochs = 0: initial weights, same seed, data and readout)",
                    "test_accuracy": m["test_accuracy"], "train_accuracy_last_epoch": m["train_accuracy_last_epoch"],
                    "seconds": round(time.perf_counter() - t0, 3)},
    }


def _pipeline_on(config: RunConfig, progress: bool, dataset, step: PlasticityStep | None, t0: float) -> tuple[HebbNetwork, dict[str, Any]]:
    """One training run on loaded data (`t0`: when loading started, for data_seconds)."""
    device = resolve_device(config.device)
    from .streaming import needs_streaming, streaming_pipeline

    if needs_streaming(config, dataset):  # unlabelled/streamed Hebbian data or an augmented readout
        return streaming_pipeline(config, progress, dataset, step, t0)
    x_train, y_train, x_test, y_test = dataset_tensors(dataset)
    init_gen, order_gen = seeded_generators(config.seed)
    step = step if step is not None else step_for(config, device)
    net = HebbNetwork(config, num_classes=dataset.num_classes, generator=init_gen, step=step).to(device)
    t_data = time.perf_counter() - t0

    unsup_seconds = hebbian_phase(net, x_train, config, device, order_gen, progress)

    t1 = time.perf_counter()
    train_features = extract_features(net, x_train, device, progress, "train features")
    test_features = extract_features(net, x_test, device, progress, "test features")
    features_seconds = time.perf_counter() - t1

    readout = train_readout(net, train_features, y_train, config, order_gen, progress)
    t2 = time.perf_counter()
    test_accuracy = accuracy_from_features(net, test_features, y_test)
    eval_seconds = time.perf_counter() - t2

    metrics = run_metrics(
        config, net, dataset, device, test_accuracy, readout, t0,
        unsup_seconds=unsup_seconds, features_seconds=features_seconds, eval_seconds=eval_seconds, data_seconds=t_data,
        n_train=int(x_train.shape[0]), n_test=int(x_test.shape[0]),
    )
    return net, metrics


def run_metrics(config: RunConfig, net: HebbNetwork, dataset, device: torch.device, test_accuracy: float,
                readout: ReadoutResult, t0: float, **seconds_and_counts: float | int) -> dict[str, Any]:
    """metrics.json of a training run (every pipeline writes the same keys)."""
    timings = {k: round(float(v), 3) for k, v in seconds_and_counts.items() if k.endswith("_seconds")}
    counts = {k: int(v) for k, v in seconds_and_counts.items() if not k.endswith("_seconds")}
    return {
        "test_accuracy": round(test_accuracy, 4),
        "train_accuracy_last_epoch": round(readout.train_accuracy, 4),
        **timings,
        "readout_seconds": round(readout.seconds, 3),
        "readout_kernel": readout.kernel,
        "total_seconds": round(time.perf_counter() - t0, 3),
        "preset": config.preset,
        "dataset": dataset.name,
        "data_source": dataset.source,
        **counts,
        "device": str(device),
        "seed": config.seed,
        "feature_size": net.feature_size,
        "weight_norm_gap": [round(float((neuron_norms(b.layer.weight) - 1).abs().mean()), 6) for b in net.blocks],
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "threads": torch.get_num_threads(),
        "policy": config.precision.policy,
        "mode": net.step.mode,
        **({"correlation_kernels": {str(i): k for i, k in net.step.kernels.items()}}
           if getattr(net.step, "kernels", None) else {}),
        **({"linear_kernels": {str(i): k for i, k in net.step.linear_kernels.items()}}
           if getattr(net.step, "linear_kernels", None) else {}),
        "diagnostics": net.step.diagnostics(),
    }


def write_run(directory: Path, config: RunConfig, net: HebbNetwork, metrics: dict[str, Any]) -> None:
    from .plots import plot_receptive_fields
    from .tomlio import dumps_toml

    write_text_atomic(directory / "config.toml", dumps_toml(config.to_dict()))
    save_checkpoint(net, directory / "checkpoint.pt")
    plot_receptive_fields(net, directory / "receptive_fields.png")
    write_json_atomic(directory / "metrics.json", metrics)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[RunConfig, HebbNetwork]:
    """Reload a run directory for evaluation or deployment (config.toml checked against the
    checkpoint: see `neurohebb.runfiles`)."""
    from .runfiles import load_run as _load_run

    return _load_run(run_dir, device)
