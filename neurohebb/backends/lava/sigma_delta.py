"""The folded ReLU stages (`fold`) as a sigma-delta network in Loihi units, and its exact NumPy twin.

Circuit (everything between the input and the class decision is synapses and neurons):

    pixels --(host: graded spikes, image_n - image_{n-1})--> Sparse M_0 (8-bit) --> SigmaDelta ReLU
      --> Sparse M_1 --> SigmaDelta ReLU --> ... --> Sparse R --> SigmaDelta (no ReLU: readout)
    readout activations at the end of each sample's window --(host)--> argmax = class

A sigma-delta neuron (lava.proc.sdn) integrates its graded input (sigma), applies ``relu(sigma +
bias)`` and sends the *change* of that activation as one graded spike when it reaches ``vth``
(the remainder is kept and sent with a later change). With ``vth = 1`` (the default) every
change is sent, so each neuron's downstream sum equals its activation exactly: a neuron fires
(at most) once per sample and layer, when the sample's wave reaches it, and only if its value
changed. Samples play back to back; each owns ``window = stages + 1 + gap`` steps (one step of
delay per Sparse).

What is exact and what is approximate: the folding is exact (see `fold`). Approximations are the
8-bit weights (one shared exponent per stage, `to_loihi`), integer activations (one unit per
stage, chosen on calibration images so that the largest activation uses about 13 bits), the
integer bias, and the floor of Lava's ``weight_exp`` right shift, applied to each step's input:
the floor of the *change* between consecutive samples, so a sample's result depends on the
previous sample by at most one unit per step and stage. The NumPy twin (`emulate`) follows
Lava 0.10's `PySparseModelBitAcc` and `PySigmaDeltaModelFixed` operation by operation and
reproduces every graded spike.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ...errors import ConfigError, NeurohebbError
from .fold import Stage, fold, forward
from .weights import MAX_WEIGHT_EXP, MIN_WEIGHT_EXP, to_loihi

ACT_TARGET = 2**13  # largest calibration activation, in units (2x margin under Lava's 16-bit a_out)
ACC_LIMIT = 2**27  # largest pre-shift sum of a stage at calibration (16x under Lava's int32 arithmetic)
BIAS_LIMIT = 2**15 - 1  # SigmaDelta bias is a 16-bit signed register
STATE_LIMIT = 2**23  # 24-bit sigma / activation


@dataclass(frozen=True)
class SDCircuit:
    """Free parameters of the sigma-delta deployment."""

    vth: int = 1  # delta threshold of the hidden neurons, in activation units (1: every change is sent)
    gap: int = 0  # extra silent steps per window

    def __post_init__(self) -> None:
        if self.vth < 1:
            raise ConfigError(f"the sigma-delta threshold vth must be >= 1 activation unit, got {self.vth}")
        if self.gap < 0:
            raise ConfigError(f"gap must be >= 0 steps, got {self.gap}")


@dataclass(frozen=True)
class SDStage:
    """One Sparse + SigmaDelta layer in Loihi units."""

    name: str
    weights: object  # scipy.sparse.csr_matrix int32: what Lava's Sparse stores (8-bit grid)
    num_weight_bits: int
    exponent: int  # shared exponent of the weight mantissas
    grid_shift: int
    weight_exp: int
    bias: np.ndarray  # int64 [out]
    relu: bool
    unit: float  # float value of one unit of this stage's activation
    out_shape: tuple[int, ...]
    max_abs_weight_error: float

    @property
    def size(self) -> int:
        return int(self.weights.shape[0])

    def float_matrix(self):
        """The quantised weights as float values (what the integer circuit represents)."""
        return self.weights.astype(np.float64) * 2.0 ** (self.exponent - self.grid_shift)


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
        """Hidden stages use the circuit's threshold; the readout sends every change (vth 1)."""
        return 1 if index == len(self.stages) - 1 else int(self.circuit.vth)

    def counter_offset(self, index: int) -> int:
        """First step (1-based) of sample 0's wave at stage ``index``'s neurons."""
        return 2 + index

    def summary(self) -> dict:
        return {
            "circuit": asdict(self.circuit),
            "window": self.window,
            "stages": [{"name": s.name, "neurons": s.size, "inputs": int(s.weights.shape[1]), "synapses": int(s.weights.nnz),
                        "num_weight_bits": s.num_weight_bits, "weight_exponent": s.exponent, "weight_exp": s.weight_exp,
                        "relu": s.relu, "unit": s.unit, "max_abs_bias": int(np.abs(s.bias).max()) if s.size else 0,
                        "max_abs_weight_error": s.max_abs_weight_error, "out_shape": list(s.out_shape)}
                       for s in self.stages],
            "calibration": self.calibration,
        }


def _quantise(stage: Stage, num_weight_bits: int):
    from scipy import sparse

    m = stage.matrix.tocsr()
    q = to_loihi(m.data.reshape(1, -1), num_weight_bits)
    stored = sparse.csr_matrix(((q.mantissa.ravel().astype(np.int64) << q.grid_shift).astype(np.int32),
                                m.indices.copy(), m.indptr.copy()), shape=m.shape)
    stored.eliminate_zeros()
    return stored, q


def map_sigma_delta(spec, calibration_images: np.ndarray, circuit: SDCircuit = SDCircuit(),
                    num_weight_bits: int = 8) -> SDNetwork:
    """Quantise the folded network; ``calibration_images`` (uint8 training images) set each
    stage's activation unit (see the module docstring)."""
    from ...description import as_spec

    spec = as_spec(spec)
    images = np.asarray(calibration_images)
    n_in = int(np.prod(spec.input_shape))
    if images.dtype != np.uint8 or len(images) == 0 or images.reshape(len(images), -1).shape[1] != n_in:
        raise ConfigError(f"calibration images must be a non-empty uint8 array with {n_in} pixels each")
    stages = fold(spec)
    quantised = [_quantise(s, num_weight_bits) for s in stages]
    # Calibration peaks of every stage's pre-activation, in float, with the quantised weights.
    z = images.reshape(len(images), -1).astype(np.float64) / 255.0
    peaks = []
    for s, (stored, q) in zip(stages, quantised):
        u = (stored.astype(np.float64) @ z.T).T * 2.0 ** (q.exponent - q.grid_shift) + s.bias
        peaks.append(float(np.abs(u).max()) or 1.0)
        z = np.maximum(u, 0.0) if s.relu else u
    # Smallest admissible unit of every stage, from the last stage back: its own range, the next
    # stage's pre-shift sum, and the next stage's unit being reachable with weight_exp >= -8.
    gains = [2.0 ** (q.exponent - q.grid_shift) for _, q in quantised]
    lower = [0.0] * len(stages)
    for i in reversed(range(len(stages))):
        lower[i] = peaks[i] / ACT_TARGET
        if i + 1 < len(stages):
            lower[i] = max(lower[i], peaks[i + 1] / (gains[i + 1] * ACC_LIMIT),
                           lower[i + 1] / (gains[i + 1] * 2.0 ** -MIN_WEIGHT_EXP))
    out: list[SDStage] = []
    s_in = 1.0 / 255.0
    for i, (s, (stored, q)) in enumerate(zip(stages, quantised)):
        acc_unit = gains[i] * s_in  # value of one unit of the pre-shift sum
        target = lower[i]
        wexp = min(MAX_WEIGHT_EXP, math.floor(math.log2(acc_unit / target)))
        while True:
            if wexp < MIN_WEIGHT_EXP:
                raise NeurohebbError(f"stage {s.name}: its activations do not fit Loihi's 24-bit state with a weight "
                                     f"exponent >= {MIN_WEIGHT_EXP}; the network's activations grow too fast to deploy")
            unit = acc_unit * 2.0 ** (-wexp)
            bias = np.rint(s.bias / unit).astype(np.int64)
            if not bias.size or np.abs(bias).max() <= BIAS_LIMIT:
                break
            wexp -= 1  # a coarser unit until the bias fits its 16-bit register
        out.append(SDStage(s.name, stored, int(num_weight_bits), int(q.exponent), int(q.grid_shift), int(wexp), bias,
                           s.relu, float(unit), tuple(s.out_shape), float(q.max_abs_error)))
        s_in = unit
    calibration = {"images": int(len(images)), "peak_pre_activation": peaks,
                   "peak_units": [p / st.unit for p, st in zip(peaks, out)]}
    return SDNetwork(tuple(out), circuit, tuple(spec.input_shape), calibration)


# ---------------------------------------------------------------------------------------------
# The NumPy twin


@dataclass
class SDRun:
    """Per-sample results of the sigma-delta circuit (Lava or the twin)."""

    readout: np.ndarray  # [N, C] readout activations at the end of each window (integers)
    counts: list[np.ndarray]  # per stage [N, neurons]: graded spikes per sample window
    rasters: list[np.ndarray] | None = None  # per stage [window, neurons] for the raster sample
    input_spikes: np.ndarray | None = None  # [N] nonzero input graded spikes

    @property
    def predictions(self) -> np.ndarray:
        return self.readout.argmax(axis=1)

    def spikes_per_sample(self) -> np.ndarray:
        return np.stack([c.sum(axis=1) for c in self.counts], axis=1)  # [N, stages]


def _shift(acc: np.ndarray, exp: int) -> np.ndarray:
    return np.left_shift(acc, exp) if exp > 0 else np.right_shift(acc, -exp)


class _StageState:
    def __init__(self, n: int):
        self.sigma = np.zeros(n, np.int64)
        self.act = np.zeros(n, np.int64)
        self.residue = np.zeros(n, np.int64)
        self.peak = 0


def _run_stage(stage: SDStage, vth: int, state: _StageState, steps: np.ndarray, vals: np.ndarray,
               first: bool) -> tuple[np.ndarray, np.ndarray]:
    """One Sparse + SigmaDelta over a run's event steps: input spikes ``vals`` [E, I] at ``steps``
    arrive one step later; returns the output spikes' steps and values. Between events nothing
    changes (the kept remainder is below vth), so only event steps are computed."""
    if len(steps):
        acc = (stage.weights.astype(np.int64) @ vals.T.astype(np.int64)).T  # [E, out]
        a = _shift(acc, stage.weight_exp)
        a_steps = steps + 1
    else:
        a = np.zeros((0, stage.size), np.int64)
        a_steps = steps
    if first:  # step 1: the neurons see their bias before any input (a_out starts at 0)
        if not len(a_steps) or a_steps[0] != 1:
            a = np.vstack([np.zeros((1, stage.size), np.int64), a])
            a_steps = np.concatenate([[1], a_steps])
    out = np.zeros_like(a)
    for e in range(len(a_steps)):
        state.sigma = state.sigma + a[e]
        act = state.sigma + stage.bias
        if stage.relu:
            act = np.maximum(act, 0)
        delta = act - state.act + state.residue
        s = np.where(np.abs(delta) >= vth, delta, 0)
        state.residue = delta - s
        state.act = act
        out[e] = s
        state.peak = max(state.peak, int(np.abs(state.sigma).max(initial=0)), int(np.abs(act).max(initial=0)))
    keep = np.any(out != 0, axis=1)
    return a_steps[keep], out[keep]


def emulate(net: SDNetwork, images: np.ndarray, chunk: int = 256, raster_sample: int = 0) -> SDRun:
    """Play ``images`` (uint8) back to back through the circuit, as the Lava run does."""
    images = np.asarray(images)
    n = len(images)
    if n < 1:
        raise ConfigError("no samples to emulate")
    flat = images.reshape(n, -1).astype(np.int64)
    if flat.shape[1] != net.num_inputs:
        raise ConfigError(f"images have {flat.shape[1]} pixels, the network expects {net.num_inputs}")
    w = net.window
    states = [_StageState(s.size) for s in net.stages]
    readout = np.zeros((n, net.num_classes), np.int64)
    counts = [np.zeros((n, s.size), np.int64) for s in net.stages]
    rasters = [np.zeros((w, s.size), np.int64) for s in net.stages]
    running = np.zeros(net.num_classes, np.int64)  # the sampler's sum of readout spikes
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        prev = flat[start - 1] if start > 0 else np.zeros(flat.shape[1], np.int64)
        deltas = np.diff(np.vstack([prev[None], flat[start:stop]]), axis=0)
        steps = np.arange(start, stop) * w + 1
        vals = deltas
        for i, stage in enumerate(net.stages):
            steps, vals = _run_stage(stage, net.vth(i), states[i], steps, vals, first=start == 0)
            nz = vals != 0
            win, phase = np.divmod(steps - net.counter_offset(i), w)
            ok = (steps >= net.counter_offset(i)) & (win < n)
            for e in np.nonzero(ok)[0]:
                counts[i][win[e]] += nz[e]
                if win[e] == raster_sample:
                    rasters[i][phase[e]] = nz[e]
        # the sampler records the running sum of readout spikes at step (m + 1) * window
        ends = (np.arange(start, stop) + 1) * w
        idx = np.searchsorted(steps, ends, side="right")
        cum = np.cumsum(vals, axis=0) if len(vals) else np.zeros((0, net.num_classes), np.int64)
        for j, k in enumerate(idx):
            readout[start + j] = running + (cum[k - 1] if k > 0 else 0)
        if len(vals):
            running = running + cum[-1]
    peaks = [st.peak for st in states]
    if max(peaks) >= STATE_LIMIT:
        raise NeurohebbError(f"a sigma-delta state reached {max(peaks)}, beyond Loihi's 24-bit range; "
                             "deploy with more calibration images")
    nonzero_in = (np.diff(np.vstack([np.zeros((1, flat.shape[1]), np.int64), flat]), axis=0) != 0).sum(axis=1)
    return SDRun(readout, counts, rasters if 0 <= raster_sample < n else None, nonzero_in)


def float_predictions(net: SDNetwork, spec, images: np.ndarray) -> np.ndarray:
    """The folded float64 network's predictions (the model the circuit stands for)."""
    return forward(fold(spec), images)[-1].argmax(axis=1)
