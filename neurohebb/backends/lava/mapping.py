"""Map a trained soft-WTA network to a spiking circuit: weights, threshold, inhibition, readout.

The circuit (one soft-WTA layer and the readout; what runs where):

    pixels --(host: spike coding)--> ImageSpikeGenerator [--ttfs only: relay LIF]--> Dense W (8-bit)
      --> K LIF (WTA) --Dense (all-to-one)--> 1 inhibitory interneuron --Dense (one-to-all)--> WTA
    WTA --Dense R' (8-bit)--> C integrating LIF (readout)                          (all on chip)
    readout membrane potentials at the end of each sample --(host)--> argmax = class

Why this circuit stands for the soft WTA: the WTA neurons integrate their input current without
leak (``du`` instant, ``dv`` 0), so neuron k's potential grows as ``t * u_k`` and the neuron with
the largest ``u`` reaches the threshold first. In every step in which any WTA neuron fires, the
interneuron fires once and, a step later, lowers every WTA potential by ``inhibition *
threshold`` (the winner is also reset to 0 by its own spike). Neurons far below the winner never
fire; neurons close to it can still fire before or between the inhibitions: a soft competition
whose sharpness `inhibition` sets. Counts are read as the layer's activity. A single interneuron
keeps the inhibition per step bounded however many neurons fire together (a direct all-to-all
inhibition would sum K spikes and overflow Loihi's 24-bit current). The model's readout sees
``softmax(beta * u)``, which sums to 1, so the readout bias folds exactly into the weights
(``R' = R + b 1^T``) and the readout of spike counts needs no bias:
``argmax R' counts = argmax R' counts / sum(counts)``.

Timing: every Dense adds one step of delay. With the rate and Poisson codes the input of a
sample's step p reaches the WTA ``lead = 1`` step after the generator sends it; TTFS passes
through the relay stage (``lead = 2``), whose neurons turn each pixel's single spike into one
spike per step until the end of the input, so the WTA integrates ``c_i`` steps of ``w_i`` as with
the rate code. Each sample owns a window of ``steps + gap`` steps; ``gap >= 2`` lets the last
inhibition land before the next sample.

Neurohebb computes ``u = W x`` with ``x = pixels / 255``; with the rate code of `encoding` the
WTA neurons receive ``sum_i c_i w_i`` with ``c_i = round(steps * x_i)``, so only the weight
format and the time quantisation of ``x`` separate the two. The threshold is set from the
median winning drive on calibration (training) images so the winner fires about
``spikes_target`` times per sample.

Supported by this circuit: networks of exactly one linear soft-WTA block (no batch norm, no
learned bias, activation softmax) and the linear readout; `unsupported` names what is missing
for anything else. Multilayer and convolutional Triangle networks deploy as the sigma-delta
circuit instead (`fold`, `sigma_delta`); `unroll_conv` is the conv-to-sparse-matrix step both use.
Everything here reads the backend-neutral `neurohebb.description.NetworkSpec`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ...errors import ConfigError, NeurohebbError
from ...shapes import conv_output_size
from .encoding import check_coding, spike_counts
from .weights import MAX_WEIGHT_EXP, MIN_WEIGHT_EXP, LoihiWeights, to_loihi

TAGS = ("fixed_pt", "floating_pt")
WTA_MODES = ("spiking", "currents")
VTH_BITS = 17  # LIF threshold mantissa on Loihi (lava: vth precision 17)
UV_LIMIT = 2**23  # 24-bit signed current and voltage
ACT_SHIFT = 6  # Loihi left-shifts synaptic input and threshold by 6 bits
READOUT_VTH = 2**VTH_BITS - 1  # readout neurons integrate; they must never fire
INH_WEIGHT_MAX = 255  # 8-bit magnitude, inhibitory sign mode
WEIGHT_EXP_MAX = MAX_WEIGHT_EXP  # from the chip file, through weights.py


class UnsupportedNetwork(NeurohebbError):
    """The network has a layer or option the Lava mapping cannot express (message says which)."""


@dataclass(frozen=True)
class WTACircuit:
    """Free parameters of the spiking stand-in for the soft WTA (see the module docstring)."""

    steps: int = 32  # input time steps per sample
    coding: str = "rate"  # rate | poisson | ttfs
    spikes_target: float = 4.0  # winner spikes per sample at the median calibration drive
    inhibition: float = 1.0  # each spike subtracts inhibition * threshold from the other neurons
    gap: int = 2  # silent steps between samples (>= 2: the last inhibition lands inside the window)
    seed: int = 0  # Poisson coding only
    wta: str = "spiking"  # spiking: the WTA circuit on chip | currents: integrate u on chip, softmax on host

    def __post_init__(self) -> None:
        check_coding(self.coding)
        if self.wta not in WTA_MODES:
            raise ConfigError(f"wta mode {self.wta!r} is unknown; choose one of: {', '.join(WTA_MODES)}")
        if self.steps < 1 or self.steps > 4096:
            raise ConfigError(f"steps per sample must be in 1..4096, got {self.steps}")
        if self.gap < 2:
            raise ConfigError(f"gap must be >= 2 steps between samples (the inhibition arrives two steps after a spike), got {self.gap}")
        if not 0 < self.spikes_target <= self.steps:
            raise ConfigError(f"spikes_target must be in (0, steps={self.steps}], got {self.spikes_target}")
        if not 0 <= self.inhibition <= 4:
            raise ConfigError(f"inhibition must be in [0, 4] (1 = subtract one threshold per spike), got {self.inhibition}")

    @property
    def window(self) -> int:
        return self.steps + self.gap

    @property
    def lead(self) -> int:
        """Steps from the generator sending a sample's first input to the WTA receiving it."""
        return 2 if self.coding == "ttfs" else 1


@dataclass(frozen=True)
class LavaNetwork:
    """Everything needed to build the circuit in Lava (or emulate it), in Loihi units.

    Units: Dense outputs are integers (``ff.unit`` float per unit); the WTA threshold ``vth`` and
    the inhibition are in the same units. Float versions of the matrices (``*_float``) express
    the unquantised model in those units for the ``floating_pt`` models.
    """

    ff: LoihiWeights
    readout: LoihiWeights | None  # None: a layer without readout (on-chip learning)
    vth: int
    inh_weight: int
    inh_exp: int
    circuit: WTACircuit
    ff_float: np.ndarray
    readout_float: np.ndarray | None
    calibration: dict = field(default_factory=dict)
    # currents mode: the model's own activation and readout, applied on the host
    beta: float = 1.0  # the activation's parameter (softmax: inverse temperature; triangle: power)
    activation: str = "softmax"  # the layer's activation, applied on the host in currents mode
    host_readout: tuple[np.ndarray, np.ndarray] | None = None  # (R [C, K], b [C]) in float

    def currents_to_u(self, v: np.ndarray, fixed: bool) -> np.ndarray:
        """Integrated potentials -> the model's u: ``steps`` steps of about ``W x`` each, one Dense
        unit worth ``ff.unit``; fixed-point potentials carry Loihi's 6-bit alignment on top."""
        scale = self.ff.unit / self.circuit.steps / (2**ACT_SHIFT if fixed else 1)
        return np.asarray(v, dtype=np.float64) * scale

    def host_logits(self, v: np.ndarray, fixed: bool) -> np.ndarray:
        """currents mode: the layer's activation (softmax(beta * u), or e.g. Triangle) and the
        trained readout, computed on the host."""
        from ...npmath import block_activation

        y = block_activation(self.currents_to_u(v, fixed), self.activation, self.beta, axis=1)
        r, b = self.host_readout
        return y @ r.T + b

    def host_predictions(self, v: np.ndarray, fixed: bool) -> np.ndarray:
        return self.host_logits(v, fixed).argmax(axis=1)

    @property
    def num_inputs(self) -> int:
        return int(self.ff.mantissa.shape[1])

    @property
    def num_neurons(self) -> int:
        return int(self.ff.mantissa.shape[0])

    @property
    def num_classes(self) -> int:
        if self.host_readout is not None:
            return int(self.host_readout[0].shape[0])
        return 0 if self.readout is None else int(self.readout.mantissa.shape[0])

    @property
    def inhibition_value(self) -> int:
        return int(self.inh_weight) << int(self.inh_exp)

    def inhibition_column(self) -> np.ndarray:
        """[K, 1]: the interneuron's synapses onto every WTA neuron (inhibitory, ``inh_exp``)."""
        return np.full((self.num_neurons, 1), -int(self.inh_weight), dtype=np.int32)

    def summary(self) -> dict:
        return {
            "num_inputs": self.num_inputs,
            "num_neurons": self.num_neurons,
            "num_classes": self.num_classes,
            "num_weight_bits": self.ff.num_weight_bits,
            "ff_exponent": self.ff.exponent,
            "ff_weight_exp": self.ff.weight_exp,
            "ff_max_abs_error": self.ff.max_abs_error,
            "readout_num_weight_bits": None if self.readout is None else self.readout.num_weight_bits,
            "readout_exponent": None if self.readout is None else self.readout.exponent,
            "readout_max_abs_error": None if self.readout is None else self.readout.max_abs_error,
            "vth": int(self.vth),
            "inh_weight": int(self.inh_weight),
            "inh_exp": int(self.inh_exp),
            "circuit": asdict(self.circuit),
            "calibration": self.calibration,
            "activation": self.activation,
            "activation_param": self.beta,
        }


# ---------------------------------------------------------------------------------------------
# What can be mapped


def unsupported(spec, wta: str = "spiking") -> list[str]:
    """What the single-layer WTA circuit cannot express in this network (empty: it deploys).

    ``spec`` is a `neurohebb.description.NetworkSpec` (a network is described first)."""
    from ...description import as_spec

    spec = as_spec(spec)
    blocks = spec.blocks
    if len(blocks) != 1:
        kinds = ", ".join(b.kind for b in blocks)
        return [f"the Lava WTA circuit deploys networks of exactly one soft-WTA layer plus the readout; this one has "
                f"{len(blocks)} layers ({kinds}). Deploy a single-layer network such as the mnist-mlp preset, or a "
                "chip-deployable conv preset (mnist-conv) with the sigma-delta circuit"]
    block = blocks[0]
    problems = []
    if block.kind != "linear":
        problems.append("layers.0 is convolutional: the WTA circuit maps one linear layer; conv networks deploy as "
                        "the sigma-delta circuit (Triangle power 1, average or no pooling), e.g. the mnist-conv preset")
    if block.batchnorm:
        problems.append("layers.0.batchnorm = true is not supported by the Lava WTA circuit (input spikes cannot be "
                        "mean-centred); train with --set layers.0.batchnorm=false")
    if block.activation != "softmax" and wta != "currents":
        problems.append(f"layers.0.activation = {block.activation!r}: the spiking Lava WTA circuit stands for a softmax "
                        "activation only; deploy with --wta currents (the activation then runs on the host) "
                        "or train with --set layers.0.activation=softmax")
    if block.cfg.bias:
        problems.append("layers.0.bias = true (the learned prior) is not supported: a Loihi neuron bias also "
                        "acts in the silent steps between samples; train with --set layers.0.bias=false")
    return problems


def check_supported(net, wta: str = "spiking") -> None:
    """Raise `UnsupportedNetwork` naming the first layer/option the WTA circuit cannot express."""
    problems = unsupported(net, wta)
    if problems:
        raise UnsupportedNetwork(problems[0])


def unroll_conv(weight: np.ndarray, input_shape: tuple[int, int, int], padding: int = 0, stride: int = 1):
    """A conv layer as a sparse matrix [C_out*OH*OW, C_in*H*W] over the *unpadded* input.

    Reflect padding is folded in: a tap that falls on a padded pixel is added to the weight of
    the pixel it mirrors. Rows are ordered (channel, y, x) like `torch.flatten` of the conv output.
    """
    from scipy import sparse

    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise ConfigError(f"conv weights must be [out, in, kh, kw], got shape {w.shape}")
    cout, cin, kh, kw = w.shape
    c, h, wd = input_shape
    if c != cin:
        raise ConfigError(f"conv weights expect {cin} input channels, the input has {c}")
    oh, ow = conv_output_size(h, wd, (kh, kw), padding, stride, where="conv layer")

    def reflect(i: np.ndarray, n: int) -> np.ndarray:
        i = np.abs(i)
        return np.where(i >= n, 2 * (n - 1) - i, i)

    iy = reflect(np.arange(oh)[:, None] * stride + np.arange(kh)[None, :] - padding, h)  # [oh, kh]
    ix = reflect(np.arange(ow)[:, None] * stride + np.arange(kw)[None, :] - padding, wd)  # [ow, kw]
    co = np.arange(cout)[:, None, None, None, None, None]
    ci = np.arange(cin)[None, :, None, None, None, None]
    oy = np.arange(oh)[None, None, :, None, None, None]
    ox = np.arange(ow)[None, None, None, :, None, None]
    ky = np.arange(kh)[None, None, None, None, :, None]
    kx = np.arange(kw)[None, None, None, None, None, :]
    shape = (cout, cin, oh, ow, kh, kw)
    rows = np.broadcast_to((co * oh + oy) * ow + ox, shape).ravel()
    cols = np.broadcast_to((ci * h + iy[oy, ky]) * wd + ix[ox, kx], shape).ravel()
    vals = np.broadcast_to(w[:, :, None, None, :, :], shape).ravel()
    mat = sparse.coo_matrix((vals, (rows, cols)), shape=(cout * oh * ow, c * h * wd)).tocsr()
    mat.sum_duplicates()  # reflect padding maps several taps onto one pixel
    return mat


# ---------------------------------------------------------------------------------------------
# Building the description


def map_network(net, calibration_images: np.ndarray, circuit: WTACircuit = WTACircuit(), num_weight_bits: int = 8,
                readout_weight_bits: int = 8) -> LavaNetwork:
    """Describe ``net`` (a network or its `NetworkSpec`) as a Lava circuit; ``calibration_images``
    (uint8, training images) set the threshold."""
    from ...description import as_spec

    spec = as_spec(net)
    check_supported(spec, circuit.wta)
    readout_w = spec.readout.weight
    readout_b = spec.readout.bias if spec.readout.bias is not None else np.zeros(readout_w.shape[0])
    block = spec.blocks[0]
    return map_arrays(block.weight, calibration_images, circuit, num_weight_bits,
                      readout_w, readout_b, readout_weight_bits, beta=block.activation_param,
                      activation=block.activation)


def map_arrays(w: np.ndarray, calibration_images: np.ndarray, circuit: WTACircuit = WTACircuit(),
               num_weight_bits: int = 8, readout_w: np.ndarray | None = None, readout_b: np.ndarray | None = None,
               readout_weight_bits: int = 8, beta: float = 1.0, activation: str = "softmax") -> LavaNetwork:
    """The circuit for a weight matrix [K, I] (and optionally a readout [C, K] + bias [C])."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ConfigError(f"the soft-WTA weight matrix must be [neurons, inputs], got shape {w.shape}")
    k, n_in = w.shape
    images = np.asarray(calibration_images)
    if images.dtype != np.uint8 or len(images) == 0 or images.reshape(len(images), -1).shape[1] != n_in:
        raise ConfigError(f"calibration images must be a non-empty uint8 array with {n_in} pixels each")
    ff = to_loihi(w, num_weight_bits)

    # Winner drive per step, in stored-weight units, on the calibration images (rate counts).
    counts = spike_counts(images, circuit.steps).astype(np.float64)  # [N, I]
    drive = counts @ ff.weights.astype(np.float64).T  # [N, K]: sum over the sample
    if circuit.wta == "currents":
        return _map_currents(w, ff, drive, images, circuit, readout_w, readout_b, beta, activation)
    per_step = drive.max(axis=1) / circuit.steps
    typical = float(np.median(per_step))
    if not typical > 0:
        raise NeurohebbError("on the calibration images the winning neuron receives no positive input; "
                             "the layer cannot be deployed (check that the network was trained)")
    t_first = circuit.steps / circuit.spikes_target
    target_vth = typical * t_first  # stored-weight units
    # Largest weight_exp keeping vth and the inhibition expressible (17-bit vth, 8-bit*2^7 inhibition)
    # and one step's input (twice the calibration peak) inside the 24-bit current after the 6-bit shift.
    vth_cap = min(2**VTH_BITS - 1, INH_WEIGHT_MAX * 2**WEIGHT_EXP_MAX / max(circuit.inhibition, 1e-9))
    step_peak = max(_max_step_drive(images[: min(len(images), 64)], ff, circuit), 1)
    weight_exp = min(WEIGHT_EXP_MAX, math.floor(math.log2(vth_cap / target_vth)),
                     math.floor(math.log2((UV_LIMIT >> ACT_SHIFT) / (2 * step_peak))))
    ff = ff.with_weight_exp(max(weight_exp, MIN_WEIGHT_EXP))
    vth = int(round(target_vth * 2.0**ff.weight_exp))
    if not 1 <= vth <= vth_cap:
        raise NeurohebbError(f"the threshold {vth} does not fit Loihi's 17-bit register with the weight exponent in "
                             f"{MIN_WEIGHT_EXP}..{MAX_WEIGHT_EXP}; use fewer steps per sample or a larger spikes_target")
    inh_total = circuit.inhibition * vth
    inh_exp = 0 if inh_total <= INH_WEIGHT_MAX else math.ceil(math.log2(inh_total / INH_WEIGHT_MAX))
    inh_weight = int(round(inh_total / 2**inh_exp))

    readout, readout_float = None, None
    if readout_w is not None:
        # Readout with the bias folded in: softmax features sum to one.
        readout_w = np.asarray(readout_w, dtype=np.float64)
        bias = np.zeros(readout_w.shape[0]) if readout_b is None else np.asarray(readout_b, dtype=np.float64)
        folded = readout_w + bias[:, None]
        readout = to_loihi(folded, readout_weight_bits)
        readout_float = folded / readout.unit

    calibration = {
        "images": int(len(images)),
        "median_winner_drive_per_step": typical * 2.0**ff.weight_exp,
        "silent_fraction": float((per_step * circuit.steps < target_vth).mean()),
        "max_step_drive": _max_step_drive(images[: min(len(images), 64)], ff, circuit),
    }
    return LavaNetwork(ff, readout, vth, inh_weight, inh_exp, circuit, ff_float=w / ff.unit,
                       readout_float=readout_float, calibration=calibration, beta=float(beta))


def _map_currents(w, ff: LoihiWeights, drive: np.ndarray, images: np.ndarray, circuit: WTACircuit,
                  readout_w, readout_b, beta: float, activation: str = "softmax") -> LavaNetwork:
    """Integrators instead of a WTA: the largest weight_exp whose summed drive over a sample (with
    a 2x margin over the calibration images) stays inside Loihi's 24-bit potential."""
    if readout_w is None:
        raise ConfigError("currents mode needs the readout weights: the softmax and readout run on the host")
    peak = float(np.abs(drive).max()) * 2.0 or 1.0
    weight_exp = max(MIN_WEIGHT_EXP, min(WEIGHT_EXP_MAX, math.floor(math.log2((UV_LIMIT >> ACT_SHIFT) / peak))))
    ff = ff.with_weight_exp(weight_exp)
    bias = np.zeros(np.asarray(readout_w).shape[0]) if readout_b is None else np.asarray(readout_b, dtype=np.float64)
    calibration = {
        "images": int(len(images)),
        "peak_sample_drive": float(np.abs(drive).max()) * 2.0**weight_exp,
        "max_step_drive": _max_step_drive(images[: min(len(images), 64)], ff, circuit),
    }
    return LavaNetwork(ff, None, READOUT_VTH, 0, 0, circuit, ff_float=w / ff.unit, readout_float=None,
                       calibration=calibration, beta=float(beta), activation=activation,
                       host_readout=(np.asarray(readout_w, dtype=np.float64), bias))


def _max_step_drive(images: np.ndarray, ff: LoihiWeights, circuit: WTACircuit) -> int:
    """Largest |Dense output| in one step on a few images: must stay within 16 bits."""
    from .encoding import encode

    spikes = encode(images, circuit.steps, circuit.coding, circuit.seed).astype(np.float64)  # [N, T, I]
    acc = spikes @ ff.weights.astype(np.float64).T
    return int(np.abs(np.floor(acc * 2.0**ff.weight_exp)).max()) if acc.size else 0
