"""Run configuration: dataclasses, preset/TOML loading, dotted-key overrides and validation.

Why dataclasses validated at load time: a typo in a preset or a `--set` override should fail
before minutes of training, with a message naming the field and what it accepts.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from .data.registry import NAMES as DATASETS
from .errors import ConfigError

RULES = ("softhebb", "softhebb-anti", "hard-wta", "random")
ACTIVATIONS = ("triangle", "softmax", "relu", "identity")
POOLS = ("none", "max", "avg")
LR_SCHEDULES = ("constant", "norm-adaptive")
HEBB_MODES = ("simultaneous", "greedy")
CORRELATIONS = ("conv", "wgrad", "gemm", "auto")  # hebbian.correlation: rules.correlation_kernel
LINEAR_KERNELS = ("auto", "compiled", "torch")  # hebbian.linear_kernel: steps.float32.Float32Step
HEBB_DATA = ("train", "unlabeled", "train+unlabeled")
AUGMENTS = ("none", "crop-flip")
#: readout.kernel -> LinearReadoutAdam(compiled=...): auto takes the compiled step where it runs
READOUT_KERNELS = {"auto": None, "compiled": True, "torch": False}
MAX_LAYERS = 256  # far beyond any soft-WTA stack; bounds what a typo in `--set layers.N` can allocate
_GAP = {}  # placeholder for list entries an override skips (compared by identity, never filled)


@dataclass
class LayerConfig:
    """One soft-WTA block: [BatchNorm] -> linear/conv (plastic) -> activation -> [pool].

    `rule` picks the plasticity: "softhebb" (single-layer rule, every neuron Hebbian),
    "softhebb-anti" (multilayer rule: non-winners anti-Hebbian), "hard-wta" (only the winner
    learns), "random" (weights stay at their random init: the paper's control).
    """

    kind: str = "conv"  # "conv" or "linear"
    out_channels: int = 96
    kernel_size: int = 5
    padding: int = 0  # reflect padding, conv only
    stride: int = 1
    rule: str = "softhebb-anti"
    t_invert: float = 1.0  # inverse softmax temperature of the soft WTA
    lr: float = 0.01  # base learning rate eta
    lr_schedule: str = "norm-adaptive"  # lr_k = eta * (| ||W_k|| - 1 | + 1e-10) ** lr_power
    lr_power: float = 0.5
    normalize_update: bool = True  # divide dW by max|dW| of the layer
    init_radius: float = 25.0  # W ~ N(0, (radius / sqrt(fan_in))^2)
    bias: bool = False  # learned log-prior (single-layer SoftHebb), linear layers only
    batchnorm: bool = True  # BatchNorm without affine on the block's input
    activation: str = "triangle"  # what the block passes on (and the readout sees)
    activation_param: float = 1.0  # triangle power, or softmax inverse temperature
    pool: str = "none"
    pool_kernel: int = 2
    pool_stride: int = 2
    pool_padding: int = 0

    def validate(self, where: str) -> None:
        _check_choice(f"{where}.kind", self.kind, ("conv", "linear"))
        _check_choice(f"{where}.rule", self.rule, RULES)
        _check_choice(f"{where}.activation", self.activation, ACTIVATIONS)
        _check_choice(f"{where}.pool", self.pool, POOLS)
        _check_choice(f"{where}.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for name in ("out_channels", "kernel_size", "stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name} must be >= 1, got {getattr(self, name)}")
        if self.padding < 0 or self.pool_padding < 0:
            raise ConfigError(f"{where}: padding must be >= 0")
        if self.pool != "none" and (self.pool_kernel < 1 or self.pool_stride < 1):
            raise ConfigError(f"{where}: pool_kernel and pool_stride must be >= 1")
        for name in ("t_invert", "init_radius"):
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"{where}.{name} must be > 0 and finite, got {getattr(self, name)}")
        if not 0 <= self.lr < math.inf:
            raise ConfigError(f"{where}.lr must be >= 0 and finite, got {self.lr}")
        if not math.isfinite(self.lr_power):
            raise ConfigError(f"{where}.lr_power must be finite, got {self.lr_power}")
        # the triangle's power and the softmax's inverse temperature: <= 0 or inf gives NaN outputs
        if self.activation in ("triangle", "softmax") and not 0 < self.activation_param < math.inf:
            raise ConfigError(f"{where}.activation_param ({self.activation} {'power' if self.activation == 'triangle' else 'inverse temperature'}) "
                              f"must be > 0 and finite, got {self.activation_param}")
        if self.bias and self.kind != "linear":
            raise ConfigError(f"{where}.bias is only supported for linear layers")


@dataclass
class DataConfig:
    dataset: str = "digits"
    data_dir: str | None = None  # None: built-in (digits) or ../shared/data when present
    train_subset: int | None = None  # use only the first N training samples
    test_subset: int | None = None
    download: bool = False  # fetch canonical files into data_dir when missing
    hebbian_data: str = "train"  # images of the Hebbian phase: train, unlabeled (STL-10) or train+unlabeled
    hebbian_fraction: float = 1.0  # a random fraction of them per epoch (the authors' ImageNet: 0.1)
    workers: int = 4  # decoding processes for datasets read from disk (ImageNet)

    def validate(self) -> None:
        self.dataset = self.dataset.replace("-", "_").lower()  # accept fashion-mnist, CIFAR10, ...
        _check_choice("data.dataset", self.dataset, DATASETS)
        _check_choice("data.hebbian_data", self.hebbian_data, HEBB_DATA)
        if not 0 < self.hebbian_fraction <= 1 or self.workers < 0:
            raise ConfigError("data.hebbian_fraction must be in (0, 1] and data.workers >= 0")
        for name in ("train_subset", "test_subset"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"data.{name} must be >= 1 (or omitted), got {value}")


@dataclass
class HebbianConfig:
    epochs: int = 1
    batch_size: int = 10
    mode: str = "simultaneous"  # all layers learn in one pass, or "greedy" one after another
    # the float32 step's kernel for conv layers' Hebbian sum (rules.correlation_kernel): "auto"
    # picks the fastest per shape and CPU; "conv" (with flush_tiny = false) is bit-identical to
    # releases before 2026-12, the others agree with it to float32 rounding
    correlation: str = "auto"
    # the float32 step treats post-synaptic values below 2^-100 as zero (rules.flush_tiny_):
    # subnormal arithmetic is slow on Intel CPUs, and such values move no weight
    flush_tiny: bool = True
    # how the float32 step runs linear SoftHebb layers on the CPU: "compiled" (one numba call
    # per step, steps.linear_kernels), "torch", or "auto" (compiled where numba runs); the two
    # agree to float32 rounding per step, not bit for bit
    linear_kernel: str = "auto"

    def validate(self) -> None:
        _check_choice("hebbian.mode", self.mode, HEBB_MODES)
        _check_choice("hebbian.correlation", self.correlation, CORRELATIONS)
        _check_choice("hebbian.linear_kernel", self.linear_kernel, LINEAR_KERNELS)
        if self.epochs < 0 or self.batch_size < 1:
            raise ConfigError("hebbian.epochs must be >= 0 and hebbian.batch_size >= 1")


@dataclass
class ReadoutConfig:
    """The paper's linear classifier recipe: Adam, lr halved at fixed fractions of the epochs."""

    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    dropout: float = 0.5
    lr_milestones: list[float] = field(default_factory=lambda: [0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9])
    lr_gamma: float = 0.5
    augment: str = "none"  # "crop-flip": random reflect-padded crop + flip, features recomputed per epoch
    augment_pad: int = 4
    kernel: str = "auto"  # "compiled" (numba, CPU), "torch", or "auto": compiled where it can run

    def validate(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("readout.epochs and readout.batch_size must be >= 1")
        _check_choice("readout.augment", self.augment, AUGMENTS)
        _check_choice("readout.kernel", self.kernel, tuple(READOUT_KERNELS))
        if self.augment_pad < 0:
            raise ConfigError(f"readout.augment_pad must be >= 0, got {self.augment_pad}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"readout.dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.lr < math.inf:
            raise ConfigError(f"readout.lr must be > 0 and finite, got {self.lr}")
        # gamma multiplies the lr at each milestone: <= 0 stops or reverses learning, > 1 grows it
        # without bound (the recipe halves it); milestones are fractions of the readout epochs.
        if not 0.0 < self.lr_gamma <= 1.0:
            raise ConfigError(f"readout.lr_gamma must be in (0, 1] (the factor the lr is multiplied by at each milestone), got {self.lr_gamma}")
        for i, m in enumerate(self.lr_milestones):
            if not 0.0 < m <= 1.0:
                raise ConfigError(f"readout.lr_milestones[{i}] must be a fraction of the epochs in (0, 1], got {m}")


PRECISION_MODES = ("fake-quant", "integer")
SIGNED_ROLES = ("weight", "update")  # signed in every rule


@dataclass
class PrecisionConfig:
    """The arithmetic of the Hebbian phase: a precision policy and the engine that runs it.

    `policy` is the compact policy string (`neurohebb.precision.policy`), "float32" for plain
    float training; `mode` picks the exact fake-quant or the bit-exact integer engine (they
    agree bit for bit); `stats_every` samples the stalled-synapse statistics on every n-th step.
    Part of the run, so `config.toml` and the checkpoint reproduce a quantised run exactly.
    """

    policy: str = "float32"
    mode: str = "fake-quant"
    stats_every: int = 10

    def validate(self) -> None:
        from .precision.policy import PrecisionPolicy

        _check_choice("precision.mode", self.mode, PRECISION_MODES)
        if self.stats_every < 1:
            raise ConfigError(f"precision.stats_every must be >= 1, got {self.stats_every}")
        if not str(self.policy).strip():
            raise ConfigError("precision.policy is empty; give float32 or e.g. 'weight=m8:stochastic'")
        try:
            policy = PrecisionPolicy.parse(self.policy)
        except ConfigError as exc:
            raise ConfigError(f"precision.policy: {exc}") from None
        for role in SIGNED_ROLES:  # an unsigned format would clip half of these values to 0
            fmt = policy.spec(role).fmt
            if not fmt.is_float and not fmt.signed:
                signed = f"m{fmt.bits}" if fmt.kind == "shared_exp" else f"s{fmt.bits}.{max(fmt.bits - 1, 0)}"
                raise ConfigError(f"precision.policy: {role}={fmt} is unsigned, but {role}s are signed (SoftHebb learns "
                                  f"negative weights); use a signed format such as {role}={signed}")
        self.policy = str(policy)  # canonical, complete form

    @property
    def is_float(self) -> bool:
        return self.policy == "float32"


@dataclass
class OnChipConfig:
    """On-chip learning: train the plastic layer with a chip's own learning engine
    (`neurohebb.onchip`), batch 1, in closed loop with a spiking WTA circuit. Off when `chip` is "".

    `rule` names an entry of `neurohebb/onchip/rules.toml` (rule string, traces, epoch, neuron
    settings) or is a rule string itself (then `traces` gives its traces, e.g. "x1=16:8,y1=20:12").
    The circuit: `steps` input steps + `gap` silent steps per sample, a threshold calibrated so the
    winner fires ~`spikes_target` times on the median calibration image, inhibition `inhibition`
    thresholds per spike through one inhibitory interneuron (two steps after a spike; K + K
    synapses), and `lateral_inhibition` thresholds per spike through K x K inhibitory synapses
    among the WTA neurons (one step; 0 = none): the weak early inhibition stops neurons that would
    cross their threshold in the steps before the interneuron's lands (see `onchip.engine.Circuit`).
    Validated against the chip file when the run starts.
    """

    chip: str = ""
    rule: str = "harmonic-homeostasis"
    traces: str = ""
    steps: int = 16
    gap: int = 2
    spikes_target: float = 4.0
    inhibition: float = 1.0
    calibration: int = 1000  # first training images (of the first batches seen) that set the threshold
    lateral_inhibition: float = 0.25

    def validate(self) -> None:
        if not self.chip:
            return
        if self.steps < 1 or self.gap < 2:
            raise ConfigError(f"onchip.steps must be >= 1 and onchip.gap >= 2, got {self.steps} and {self.gap}")
        if not 0 < self.spikes_target <= self.steps:
            raise ConfigError(f"onchip.spikes_target must be in (0, steps={self.steps}], got {self.spikes_target}")
        if not 0 <= self.inhibition <= 64:
            raise ConfigError(f"onchip.inhibition must be in [0, 64] thresholds per spike, got {self.inhibition}")
        if not 0 <= self.lateral_inhibition <= 4:
            raise ConfigError(f"onchip.lateral_inhibition must be in [0, 4] thresholds per spike, got {self.lateral_inhibition}")
        if not self.rule.strip():
            raise ConfigError("onchip.rule is empty; give a rule name from neurohebb/onchip/rules.toml or a rule string")
        from .onchip.model import load_engine_model
        from .onchip.rules import resolve_variant

        resolve_variant(self.rule, self.traces).check(load_engine_model(self.chip))  # before any data is loaded

    @property
    def enabled(self) -> bool:
        return bool(self.chip)


@dataclass
class RunConfig:
    preset: str = "custom"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    data: DataConfig = field(default_factory=DataConfig)
    layers: list[LayerConfig] = field(default_factory=list)
    hebbian: HebbianConfig = field(default_factory=HebbianConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    onchip: OnChipConfig = field(default_factory=OnChipConfig)

    def validate(self) -> "RunConfig":
        if not self.layers:
            raise ConfigError("the network needs at least one [[layers]] entry")
        if len(self.layers) > MAX_LAYERS:
            raise ConfigError(f"the network has {len(self.layers)} layers; at most {MAX_LAYERS} are supported")
        if isinstance(self.seed, bool) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be an integer in [0, 2**63), got {self.seed}")
        for i, layer in enumerate(self.layers):
            layer.validate(f"layers.{i}")
        self.data.validate()
        self.hebbian.validate()
        self.readout.validate()
        self.precision.validate()
        self.onchip.validate()
        if self.onchip.enabled:
            if not self.precision.is_float:
                raise ConfigError("on-chip learning uses the chip's own number formats; drop --precision "
                                  f"({self.precision.policy}) or the [onchip] table")
            plastic = [i for i, layer in enumerate(self.layers) if layer.rule != "random"]
            if len(plastic) != 1 or self.layers[plastic[0]].kind != "linear" or self.layers[plastic[0]].batchnorm:
                raise ConfigError("on-chip learning trains exactly one plastic linear layer without batchnorm; "
                                  "use a preset such as mnist-wta100")
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------------
# Building from plain data (TOML / JSON), with errors that name the offending key.


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} = {value!r} is not allowed; choose one of: {', '.join(allowed)}")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Check a scalar's type against a dataclass annotation (ints may stand for floats)."""
    origin = get_origin(annotation)
    if origin is list:
        (item,) = get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        return [_coerce(f"{name}[{i}]", v, item) for i, v in enumerate(value)]
    args = get_args(annotation)
    if args and type(None) in args:  # Optional[X]
        if value is None:
            return None
        annotation = next(a for a in args if a is not type(None))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a table, got {data!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown key {prefix}{unknown[0]}; known keys: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else key
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = _build(annotation, value, name)
        elif key == "layers":
            if not isinstance(value, list):
                raise ConfigError("layers must be an array of tables ([[layers]])")
            kwargs[key] = [_build(LayerConfig, v, f"layers.{i}") for i, v in enumerate(value)]
        else:
            kwargs[key] = _coerce(name, value, annotation)
    return cls(**kwargs)


def precision_table(table: Any) -> dict[str, Any]:
    """A `[precision]` table in canonical form: {policy, mode, stats_every}.

    Why: a policy may be written as one string (`policy = "weight=m8:stochastic"`) or role by role
    (`weight = "m8:stochastic"`, `norm = "pow2"`, the policy file format); both mean the same run.
    """
    from .precision.policy import ROLES, PrecisionPolicy

    if not isinstance(table, dict):
        raise ConfigError(f"precision must be a table, got {table!r}")
    roles = {k: v for k, v in table.items() if k in ROLES or k == "norm"}
    rest = {k: v for k, v in table.items() if k not in roles}
    if roles:
        if "policy" in rest:
            raise ConfigError("precision: give either policy = \"...\" or per-role keys (weight, update, ...), not both")
        rest["policy"] = str(PrecisionPolicy.from_dict(roles))
    return rest


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Build and validate a RunConfig from nested plain data."""
    if isinstance(data, dict) and "precision" in data:
        data = {**data, "precision": precision_table(data["precision"])}
    return _build(RunConfig, data, "").validate()


def preset_names() -> list[str]:
    files = resources.files("neurohebb.presets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".toml"))


def load_preset_dict(name: str) -> dict[str, Any]:
    ref = resources.files("neurohebb.presets").joinpath(f"{name}.toml")
    if not ref.is_file():
        raise ConfigError(f"unknown preset {name!r}; available presets: {', '.join(preset_names())}")
    data = tomllib.loads(ref.read_text(encoding="utf-8"))
    base = data.pop("inherits", None)  # a variant (e.g. cifar10-paper) names its base preset
    return merge(load_preset_dict(base), data) if base else data


def load_toml_dict(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); TOML files must be saved as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base`; layers merge element-wise by index."""
    out = dict(base)
    for key, value in override.items():
        if key == "layers" and value == []:
            raise ConfigError("layers = [] would leave the network without layers; change a layer with "
                              "--set layers.N.KEY=VALUE, or give the [[layers]] tables in a --config file")
        if key == "layers" and isinstance(value, list) and isinstance(out.get(key), list):
            layers = [dict(layer) if isinstance(layer, dict) else layer for layer in out[key]]
            for i, layer in enumerate(value):
                if i < len(layers):
                    if isinstance(layer, dict) and isinstance(layers[i], dict):
                        layers[i] = merge(layers[i], layer)
                    else:
                        layers[i] = layer  # not a table: _build names it
                elif layer is _GAP:
                    raise ConfigError(f"layers.{len(value) - 1}: the network has {len(layers)} layer(s), numbered from 0; "
                                      f"change one of layers.0..{len(layers) - 1}, or add the next one as layers.{len(layers)}")
                else:
                    layers.append(layer)
            out[key] = layers
        elif key == "layers" and isinstance(value, list) and any(layer is _GAP for layer in value):
            raise ConfigError(f"layers.{len(value) - 1}: the network has no layers {', '.join(str(i) for i, v in enumerate(value) if v is _GAP)} "
                              "to change; give the [[layers]] tables in a --config file")
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """Turn 'hebbian.batch_size=32' or 'layers.0.lr=0.05' into a nested dict.

    Values are read as TOML (numbers, booleans, quoted strings, arrays); anything that is not
    valid TOML is taken as a bare string, so `--set data.dataset=mnist` works unquoted.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. hebbian.batch_size=32")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"override key {key!r} is malformed")
    nested: Any = value
    for part in reversed(parts):
        if part.isdigit():
            index = int(part)
            if index >= MAX_LAYERS:
                raise ConfigError(f"override key {key!r}: index {index} is out of range; layers are numbered from 0 (at most {MAX_LAYERS - 1})")
            nested = [_GAP] * index + [nested]
        else:
            nested = {part: nested}
    return nested


def resolve_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] | None = None,
    **fields_: Any,
) -> RunConfig:
    """Preset, then config file, then `--set` overrides, then explicit CLI fields (if not None)."""
    data: dict[str, Any] = {}
    if preset:
        data = load_preset_dict(preset)
        data["preset"] = preset
    if config_file:
        data = merge(data, load_toml_dict(config_file))
    if isinstance(data.get("precision"), dict):  # one canonical form before CLI fields merge in
        data["precision"] = precision_table(data["precision"])
    for text in overrides or []:
        data = merge(data, parse_override(text))
    for dotted, value in fields_.items():
        if value is not None:
            if dotted == "precision":  # a whole [precision] table (from --precision)
                data = merge(data, {"precision": precision_table(value)})
            else:
                data = merge(data, parse_override_value(dotted, value))
    return config_from_dict(data)


def parse_override_value(dotted: str, value: Any) -> dict[str, Any]:
    nested: Any = value
    for part in reversed(dotted.split("__")):
        nested = {part: nested}
    return nested
