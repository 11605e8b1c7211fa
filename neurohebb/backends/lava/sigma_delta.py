"""The folded ReLU stages (`fold`) as a sigma-delta network in Loihi units, and its exact NumPy twin.

Circuit (everything between the input and the class decision is synapses and neurons):

    pixels --(host: graded spikes)--> Sparse M_0 (8-bit) --> SigmaDelta ReLU
      --> Sparse pool+pad relay --> SigmaDelta --> Conv K_1 (8-bit) --> SigmaDelta ReLU --> ...
      --> Sparse R --> SigmaDelta (no ReLU: the readout)
    readout activations at the end of each sample's window --(host)--> argmax = class

A sigma-delta neuron (lava.proc.sdn) integrates its graded input (sigma), computes ``relu(sigma
+ bias)`` and sends its *change* as one graded spike when the change reaches ``vth`` (``>>
state_exp``: a spike carries the activation in units of ``2**state_exp``). Samples play back to
back; each owns ``window = stages + 1 + gap`` steps (one step of delay per Sparse or Conv), and
every neuron restarts from 0 in the step the sample's wave reaches it (`procs.graded_io.
SigmaDeltaReset`). A hidden neuron therefore fires at most once per sample, carrying its
activation; with ``vth = 1`` every nonzero activation is sent.

Units (`_choose_units`): a Sparse stage shifts its sums by ``weight_exp`` and its neurons use
about 13 bits; Lava's `Conv` has no weight exponent (its fixed-point model wraps its sums to 24
bits), so a Conv stage's unit is its input's and the relay before it sends spikes just coarse
enough for the Conv's sums to stay under 2**22.

What is exact and what is approximate: the folding is exact (see `fold`). Approximations are the
8-bit weights (one shared exponent per stage, `to_loihi`), integer activations and biases (units
chosen on calibration images; the spikes carry an activation with ``state_exp`` bits fewer where
the next stage's sums need it), and the floor of the ``weight_exp`` and ``state_exp`` shifts.
Each sample is computed from the same state, so it does not depend on the samples before it. The
NumPy twin (`emulate`) follows Lava 0.10's `PySparseModelBitAcc`, `PyConvModelFixed` and
`PySigmaDeltaModelFixed` operation by operation (all of a stage's input arrives in one step) and
reproduces every graded spike.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ...errors import ConfigError, NeurohebbError
from .fold import Stage, conv_apply, fold, forward
from .weights import MAX_WEIGHT_EXP, MIN_WEIGHT_EXP, to_loihi

ACT_TARGET = 2**13  # largest calibration activation of a hidden neuron, in units (2x margin under 16-bit a_out)
READOUT_TARGET = 2**14  # the readout only feeds the argmax: one more bit of range
MAX_STATE_EXP = 7  # SigmaDelta state_exp is a 3-bit register
ACC_LIMIT = 2**27  # largest pre-shift sum of a Sparse stage at calibration (16x under Lava's int32 arithmetic)
ACC_LIMIT_CONV = 2**22  # largest sum of a Conv stage at calibration (2x under the 24-bit wrap of Lava's Conv)
BIAS_LIMIT = 2**15 - 1  # SigmaDelta bias is a 16-bit signed register
STATE_LIMIT = 2**23  # 24-bit sigma / activation


@dataclass(frozen=True)
class SDCircuit:
    """Free parameters of the sigma-delta deployment."""

    vth: int = 1  # delta threshold of the hidden neurons, in spike units (1: every nonzero spike is sent)
    gap: int = 0  # extra silent steps per window

    def __post_init__(self) -> None:
        if self.vth < 1:
            raise ConfigError(f"the sigma-delta threshold vth must be >= 1 activation unit, got {self.vth}")
        if self.gap < 0:
            raise ConfigError(f"gap must be >= 0 steps, got {self.gap}")


@dataclass(frozen=True)
class SDStage:
    """One synapse + SigmaDelta layer in Loihi units: a fixed-point `Sparse`, or a `Conv` whose
    ``kernel`` is stored once (Lava's `Conv` has no weight exponent: ``weight_exp`` is 0)."""

    name: str
    weights: "object | None"  # scipy.sparse.csr_matrix int32: what Lava's Sparse stores (8-bit grid); None for Conv
    num_weight_bits: int
    exponent: int  # shared exponent of the weight mantissas
    grid_shift: int
    weight_exp: int
    bias: np.ndarray  # int64 [out], in units of `unit` (a multiple of 2**state_exp)
    relu: bool
    unit: float  # float value of one unit of this stage's activation (inside the neuron)
    state_exp: int  # spikes carry activation >> state_exp, i.e. in units of unit * 2**state_exp
    out_shape: tuple[int, ...]
    max_abs_weight_error: float
    kernel: np.ndarray | None = None  # int32 [K, C, kh, kw] (correlation, torch layout) for a Conv stage
    in_shape: tuple[int, int, int] | None = None  # (C, H, W) the kernel reads, already padded
    stride: int = 1

    @property
    def kind(self) -> str:
        return "sparse" if self.kernel is None else "conv"

    @property
    def size(self) -> int:
        return int(np.prod(self.out_shape))

    @property
    def inputs(self) -> int:
        return int(np.prod(self.in_shape)) if self.kernel is not None else int(self.weights.shape[1])

    @property
    def synapses(self) -> int:
        """Connections (a conv neuron's kernel taps count once per neuron)."""
        if self.kernel is None:
            return int(self.weights.nnz)
        return self.size * int(np.prod(self.kernel.shape[1:]))

    @property
    def stored_weights(self) -> int:
        """Weights the synapse process stores: the nonzeros of a Sparse, the kernel of a Conv."""
        return int(self.weights.nnz) if self.kernel is None else int(self.kernel.size)

    def fan_out(self) -> np.ndarray:
        """Per input neuron (twin order), the synapses its spike drives: its nonzero column entries
        in a Sparse; in a Conv, the output positions whose window covers it times the channels."""
        if self.kernel is None:
            return np.diff(self.weights.tocsc().indptr)
        k, c, kh, kw = self.kernel.shape
        _, h, w = self.in_shape
        oh, ow = self.out_shape[1], self.out_shape[2]

        def cover(n: int, kernel: int, outs: int) -> np.ndarray:
            starts = np.arange(outs) * self.stride
            return ((np.arange(n)[:, None] >= starts[None]) & (np.arange(n)[:, None] < starts[None] + kernel)).sum(axis=1)

        per_position = np.outer(cover(h, kh, oh), cover(w, kw, ow)) * k
        return np.broadcast_to(per_position, (c, h, w)).ravel()

    def float_matrix(self):
        """The quantised weights as float values (what the integer circuit represents); Sparse only."""
        return self.weights.astype(np.float64) * 2.0 ** (self.exponent - self.grid_shift)

    def accumulate(self, spikes: np.ndarray) -> np.ndarray:
        """The synapses' integer output for a batch of graded spikes [B, in] (int64), before the
        neuron: PySparseModelBitAcc's ``weights.dot(s_in)`` shifted by ``weight_exp``, or
        PyConvModelFixed's convolution (float64, exact for these sizes) cast to int32 and wrapped
        to 24 bits (`lava.proc.conv.utils.signed_clamp`)."""
        if self.kernel is None:
            return _shift((self.weights.astype(np.int64) @ spikes.T.astype(np.int64)).T, self.weight_exp)
        acc = conv_apply(spikes.astype(np.float64), self.kernel.astype(np.float64), self.in_shape, self.stride)
        return _wrap24(acc.astype(np.int32).astype(np.int64))


@dataclass(frozen=True)
class SDNetwork:
    stages: tuple[SDStage, ...]
    circuit: SDCircuit
    input_shape: tuple[int, ...]
    calibration: dict = field(default_factory=dict)
    input_unit: float = 1.0 / 255.0

    @property
    def window(self) -> int:
        return len(self.stages) + 1 + self.circuit.gap

    @property
    def num_inputs(self) -> int:
        return int(self.stages[0].weights.shape[1])

    @property
    def num_classes(self) -> int:
        return self.stages[-1].size

    def vth(self, index: int) -> int:
        """Delta threshold in spike units (Lava scales it by 2**state_exp): hidden stages use the
        circuit's, the readout sends every change (vth 1)."""
        return 1 if index == len(self.stages) - 1 else int(self.circuit.vth)

    def counter_offset(self, index: int) -> int:
        """Step (1-based) at which sample 0's wave reaches stage ``index``'s neurons (they restart
        then; a window later for sample 1, ...)."""
        return 2 + index

    def summary(self) -> dict:
        return {
            "circuit": asdict(self.circuit),
            "window": self.window,
            "stages": [{"name": s.name, "kind": s.kind, "neurons": s.size, "inputs": s.inputs, "synapses": s.synapses,
                        "stored_weights": s.stored_weights,
                        "num_weight_bits": s.num_weight_bits, "weight_exponent": s.exponent, "weight_exp": s.weight_exp,
                        "relu": s.relu, "unit": s.unit, "state_exp": s.state_exp, "max_abs_bias": int(np.abs(s.bias).max()) if s.size else 0,
                        "max_abs_weight_error": s.max_abs_weight_error, "out_shape": list(s.out_shape)}
                       for s in self.stages],
            "calibration": self.calibration,
        }


def _quantise(stage: Stage, num_weight_bits: int):
    """What the synapse process stores (8-bit mantissas on Lava's grid) and their format."""
    from scipy import sparse

    if stage.kernel is not None:
        q = to_loihi(stage.kernel.reshape(1, -1), num_weight_bits)
        stored = (q.mantissa.astype(np.int64) << q.grid_shift).astype(np.int32).reshape(stage.kernel.shape)
        return stored, q
    m = stage.matrix.tocsr()
    q = to_loihi(m.data.reshape(1, -1), num_weight_bits)
    stored = sparse.csr_matrix(((q.mantissa.ravel().astype(np.int64) << q.grid_shift).astype(np.int32),
                                m.indices.copy(), m.indptr.copy()), shape=m.shape)
    stored.eliminate_zeros()
    return stored, q


def _choose_units(stages: list[Stage], gains: list[float], acc_peaks: list[float], peaks: list[float],
                  floors: dict[int, float]) -> list[tuple[int, float, int, np.ndarray]] | tuple[int, float]:
    """Per stage (weight_exp, unit, state_exp, bias), or (stage, unit) when a Conv stage's bias does
    not fit its register and the spikes into it must have at least that unit (the caller retries).

    Backward pass: ``need[i]``, the finest unit the spikes into stage i may have, so that the
    stage's pre-shift sums fit (Sparse: int32 with margin; Conv: the 24-bit wrap with margin)
    and its own unit can reach what the next stage needs (a Sparse shifts by weight_exp >= -8;
    a Conv, which has no weight exponent, takes its unit from its input; spikes are at most 2**7
    coarser than the neuron's unit, the 3-bit state_exp). Forward pass: the finest units allowed."""
    n = len(stages)
    last = n - 1
    need = [0.0] * (n + 1)
    umin = [0.0] * n
    for i in reversed(range(n)):
        own = peaks[i] / (READOUT_TARGET if i == last else ACT_TARGET)
        umin[i] = max(own if stages[i].kind == "sparse" else 0.0, need[i + 1] / 2.0**MAX_STATE_EXP)
        if stages[i].kind == "conv":
            need[i] = max(acc_peaks[i] / (gains[i] * ACC_LIMIT_CONV), umin[i] / gains[i])
        else:
            need[i] = max(acc_peaks[i] / (gains[i] * ACC_LIMIT), umin[i] / (gains[i] * 2.0**-MIN_WEIGHT_EXP))
        need[i] = max(need[i], floors.get(i, 0.0))
    out = []
    s_in = 1.0 / 255.0
    if s_in < need[0] * (1 - 1e-9):
        raise NeurohebbError(f"stage {stages[0].name}: its sums would overflow Loihi's arithmetic on 8-bit pixels; "
                             "the network's weights are too large to deploy")
    for i, s in enumerate(stages):
        acc_unit = gains[i] * s_in  # value of one unit of the pre-shift sum
        wexp = 0 if s.kind == "conv" else min(MAX_WEIGHT_EXP, math.floor(math.log2(acc_unit / umin[i])))
        while True:
            if wexp < MIN_WEIGHT_EXP:
                raise NeurohebbError(f"stage {s.name}: its activations do not fit a 16-bit range with a weight "
                                     f"exponent >= {MIN_WEIGHT_EXP}; the network's activations grow too fast to deploy")
            unit = acc_unit * 2.0 ** (-wexp)
            state_exp = 0 if i == last else max(0, math.ceil(math.log2(need[i + 1] / unit) - 1e-9))
            if state_exp > MAX_STATE_EXP:
                raise NeurohebbError(f"stage {s.name}: its spikes would need state_exp {state_exp} > {MAX_STATE_EXP} "
                                     "for the next stage's sums to fit; the network cannot be deployed")
            # Lava's SigmaDelta takes its bias in spike units (a 16-bit register; it shifts it left by state_exp)
            register = np.rint(s.bias / (unit * 2.0**state_exp)).astype(np.int64)
            worst = int(np.abs(register).max()) if register.size else 0
            if worst <= BIAS_LIMIT:
                break
            if s.kind == "conv":  # its unit is its input's: ask the stage before for coarser spikes
                return i, s_in * 2.0 ** math.ceil(math.log2(worst / BIAS_LIMIT))
            wexp -= 1  # a coarser unit until the bias fits its register
        out.append((int(wexp), float(unit), int(state_exp), register << state_exp))
        s_in = unit * 2.0**state_exp
    return out


def map_sigma_delta(spec, calibration_images: np.ndarray, circuit: SDCircuit = SDCircuit(),
                    num_weight_bits: int = 8) -> SDNetwork:
    """Quantise the folded network; ``calibration_images`` (uint8 training images) set each
    stage's activation unit (see the module docstring and `_choose_units`)."""
    from ...description import as_spec

    spec = as_spec(spec)
    images = np.asarray(calibration_images)
    n_in = int(np.prod(spec.input_shape))
    if images.dtype != np.uint8 or len(images) == 0 or images.reshape(len(images), -1).shape[1] != n_in:
        raise ConfigError(f"calibration images must be a non-empty uint8 array with {n_in} pixels each")
    stages = fold(spec)
    quantised = [_quantise(s, num_weight_bits) for s in stages]
    gains = [2.0 ** (q.exponent - q.grid_shift) for _, q in quantised]
    # Calibration peaks of every stage's sums (without and with bias), in float, quantised weights.
    z = images.reshape(len(images), -1).astype(np.float64) / 255.0
    acc_peaks, peaks = [], []
    for s, (stored, _), g in zip(stages, quantised, gains):
        if s.kernel is None:
            a = (stored.astype(np.float64) @ z.T).T * g
        else:
            a = conv_apply(z, stored.astype(np.float64), s.in_shape, s.stride) * g
        u = a + s.bias
        acc_peaks.append(float(np.abs(a).max()) or 1.0)
        peaks.append(float(np.abs(u).max()) or 1.0)
        z = np.maximum(u, 0.0) if s.relu else u
    floors: dict[int, float] = {}
    for _ in range(64):
        units = _choose_units(stages, gains, acc_peaks, peaks, floors)
        if isinstance(units, list):
            break
        i, coarser = units  # the stage before i must send coarser spikes
        floors[i] = max(floors.get(i, 0.0), coarser)
    else:  # pragma: no cover - the floors grow geometrically, so this needs an absurd network
        raise NeurohebbError("no units fit every bias register; the network cannot be deployed")
    out: list[SDStage] = []
    for s, (stored, q), (wexp, unit, state_exp, bias) in zip(stages, quantised, units):
        conv = s.kernel is not None
        out.append(SDStage(s.name, None if conv else stored, int(num_weight_bits), int(q.exponent), int(q.grid_shift),
                           wexp, bias, s.relu, unit, state_exp, tuple(s.out_shape), float(q.max_abs_error),
                           kernel=stored if conv else None, in_shape=s.in_shape, stride=s.stride))
    calibration = {"images": int(len(images)), "peak_pre_activation": peaks,
                   "peak_units": [p / st.unit for p, st in zip(peaks, out)]}
    return SDNetwork(tuple(out), circuit, tuple(spec.input_shape), calibration)


# ---------------------------------------------------------------------------------------------
# The NumPy twin


@dataclass
class SDRun:
    """Per-sample results of the sigma-delta circuit (Lava or the twin)."""

    readout: np.ndarray  # [N, C] readout activations at the end of each window (integers)
    counts: list[np.ndarray]  # per stage [N, neurons]: graded spikes per sample window ([N, 1] totals: see `emulate`)
    rasters: list[np.ndarray] | None = None  # per stage [window, neurons] for the raster sample
    input_spikes: np.ndarray | None = None  # [N] nonzero input graded spikes

    @property
    def predictions(self) -> np.ndarray:
        return self.readout.argmax(axis=1)

    def spikes_per_sample(self) -> np.ndarray:
        return np.stack([c.sum(axis=1) for c in self.counts], axis=1)  # [N, stages]


def _shift(acc: np.ndarray, exp: int) -> np.ndarray:
    return np.left_shift(acc, exp) if exp > 0 else np.right_shift(acc, -exp)


def _wrap24(x: np.ndarray) -> np.ndarray:
    """`lava.proc.conv.utils.signed_clamp(x, 24)`: a signed 24-bit wrap (not a saturation)."""
    return (x + 2**23) % 2**24 - 2**23


def _stage(stage: SDStage, vth: int, spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Sparse + restarted SigmaDelta for a batch: the wave of input spikes [B, I] in one step.

    Returns the neurons' activations and the spikes they send (after ``>> state_exp``)."""
    a = stage.accumulate(spikes)
    act = a + stage.bias  # sigma restarts at 0, so sigma = a
    if stage.relu:
        act = np.maximum(act, 0)
    sent = np.where(np.abs(act) >= vth << stage.state_exp, act, 0)  # delta = act - 0 + 0 after the restart
    return act, np.right_shift(sent, stage.state_exp)


def emulate(net: SDNetwork, images: np.ndarray, chunk: int = 500, raster_sample: int = 0,
            per_neuron: bool = True) -> SDRun:
    """Every image through the circuit, as the Lava run computes it (samples are independent:
    every neuron restarts when a sample's wave reaches it). ``per_neuron`` False keeps only each
    stage's spike total per sample (``counts[i]`` is [N, 1]): the paper's mnist network has 300k
    neurons, whose per-sample flags for the whole test set would fill 3 GB."""
    images = np.asarray(images)
    n = len(images)
    if n < 1:
        raise ConfigError("no samples to emulate")
    flat = images.reshape(n, -1).astype(np.int64)
    if flat.shape[1] != net.num_inputs:
        raise ConfigError(f"images have {flat.shape[1]} pixels, the network expects {net.num_inputs}")
    readout = np.zeros((n, net.num_classes), np.int64)
    counts = [np.zeros((n, s.size if per_neuron else 1), np.uint8 if per_neuron else np.int64) for s in net.stages]
    rasters = [np.zeros((net.window, s.size), np.int64) for s in net.stages]
    peak = 0
    for start in range(0, n, chunk):
        x = flat[start:start + chunk]
        for i, stage in enumerate(net.stages):
            act, x = _stage(stage, net.vth(i), x)
            peak = max(peak, int(np.abs(act).max(initial=0)))
            fired = x != 0
            counts[i][start:start + len(x)] = fired if per_neuron else fired.sum(axis=1, keepdims=True)
            if start <= raster_sample < start + len(x):
                rasters[i][0] = x[raster_sample - start] != 0  # a stage's spikes all fall at its restart step
        readout[start:start + len(x)] = x
    if peak >= STATE_LIMIT:
        raise NeurohebbError(f"a sigma-delta activation reached {peak}, beyond Loihi's 24-bit range; "
                             "deploy with more calibration images")
    return SDRun(readout, counts, rasters if 0 <= raster_sample < n else None, (flat != 0).sum(axis=1))


def float_predictions(net: SDNetwork, spec, images: np.ndarray) -> np.ndarray:
    """The folded float64 network's predictions (the model the circuit stands for)."""
    return forward(fold(spec), images)[-1].argmax(axis=1)
