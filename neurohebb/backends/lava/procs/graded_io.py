"""Graded-spike processes for the sigma-delta deployment (`sigma_delta`): an image generator, a
sigma-delta neuron that restarts at every sample window, and a per-window sampler.

Why these and not Lava's ring buffers: N samples play back to back in one run. The generator
sends sample n's pixels as graded spikes at the first step of its window, so nothing of the whole
test set is held per step. `SigmaDeltaReset` is Lava's `SigmaDelta` with its fixed-point model
unchanged except that sigma, activation and the kept remainder restart from 0 once per window,
in the step the sample's wave reaches the neuron -- as Lava's own `LIFReset` does for `LIF`.
Without it the floor of each step's ``weight_exp`` shift would accumulate over the samples of a
run (a drift of about half a unit per sample and neuron); with it every sample is computed from
the same state. The sampler sums the readout's graded spikes from the readout's restart to the
end of the window (with delta threshold 1, that sum is the readout activation).

Imports are absolute because Lava's compiler also executes this file outside its package.
"""
from __future__ import annotations

import numpy as np

from neurohebb.backends.lava import compat

compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


from lava.proc.sdn.models import AbstractSigmaDeltaModel  # noqa: E402
from lava.proc.sdn.process import SigmaDelta  # noqa: E402


class ImageGradedGenerator(AbstractProcess):
    """Sends image n's pixels (0..255) as graded spikes at step ``n*window + 1`` (1-based)."""

    def __init__(self, *, images: np.ndarray, window: int) -> None:
        flat = np.asarray(images).reshape(len(images), -1)
        super().__init__(window=window)
        self.images = Var(shape=flat.shape, init=flat.astype(np.int32))
        self.s_out = OutPort(shape=(flat.shape[1],))


class SigmaDeltaReset(SigmaDelta):
    """`SigmaDelta` whose state restarts at steps t with ``t % reset_interval == reset_offset``."""

    def __init__(self, *, reset_interval: int, reset_offset: int, **kwargs) -> None:
        super().__init__(reset_interval=reset_interval, reset_offset=reset_offset, **kwargs)


BITS_PER_WORD = 48  # Lava's Var.get sends every array element as a float64: 48-bit words stay exact


def pack_bits(flags: np.ndarray) -> np.ndarray:
    """Boolean flags [..., n] as int64 words [..., ceil(n / 48)] (flag j is bit j % 48 of word j // 48)."""
    flags = np.asarray(flags, dtype=bool)
    n = flags.shape[-1]
    words = -(-n // BITS_PER_WORD)
    padded = np.zeros(flags.shape[:-1] + (words * BITS_PER_WORD,), dtype=np.int64)
    padded[..., :n] = flags
    weights = np.left_shift(np.int64(1), np.arange(BITS_PER_WORD, dtype=np.int64))
    return (padded.reshape(flags.shape[:-1] + (words, BITS_PER_WORD)) * weights).sum(axis=-1)


def unpack_bits(words: np.ndarray, n: int) -> np.ndarray:
    """The inverse of `pack_bits`: int64 words [..., w] -> flags [..., n] (uint8)."""
    words = np.asarray(words, dtype=np.int64)
    bits = np.right_shift(words[..., None], np.arange(BITS_PER_WORD, dtype=np.int64)) & 1
    return bits.reshape(words.shape[:-1] + (-1,))[..., :n].astype(np.uint8)


class WindowFiringBits(AbstractProcess):
    """Which neurons sent a graded spike in each sample window, packed 48 per word, and how many
    spikes each window carried; optionally one window's raster, packed the same way.

    Why not `spike_io.WindowSpikeCounter`: Lava 0.10 reads a Var back one element at a time
    (`PyLoihiProcessModel._get_var`, about 20k elements/s here), and the paper's mnist network has
    300k neurons: per-neuron counts of 200 samples would take an hour to read, the packed flags a
    minute. A sigma-delta neuron restarted per window fires at most once in it, so the flags and
    the totals together say everything the counts would (`run_lava_sd` checks they agree).
    A spike at step t (1-based) belongs to window ``(t - offset) // window``.
    """

    def __init__(self, *, shape: tuple[int], window: int, num_windows: int, offset: int, raster_window: int = -1) -> None:
        super().__init__(shape=shape, window=window, num_windows=num_windows, offset=offset, raster_window=raster_window)
        words = -(-int(np.prod(shape)) // BITS_PER_WORD)
        self.s_in = InPort(shape=shape)
        self.bits = Var(shape=(num_windows, words), init=0)
        self.totals = Var(shape=(num_windows,), init=0)
        self.raster_bits = Var(shape=(window, words), init=0)


class WindowSampler(AbstractProcess):
    """Sums graded input spikes from each step t with ``t % window == reset_offset`` on; at the
    end of window n (step ``(n + 1) * window``) stores the sum as row n of ``samples``."""

    def __init__(self, *, shape: tuple[int], window: int, num_windows: int, reset_offset: int) -> None:
        super().__init__(shape=shape, window=window, num_windows=num_windows, reset_offset=reset_offset)
        self.s_in = InPort(shape=shape)
        self.samples = Var(shape=(num_windows,) + tuple(shape), init=0)


@implements(proc=ImageGradedGenerator, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyImageGradedGeneratorFixed(PyLoihiProcessModel):
    images: np.ndarray = LavaPyType(np.ndarray, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        n, phase = divmod(self.time_step - 1, self.proc_params["window"])
        out = np.zeros(self.images.shape[1], dtype=np.int32)
        if phase == 0 and n < self.images.shape[0]:
            out = self.images[n].astype(np.int32)
        self.s_out.send(out)


@implements(proc=SigmaDeltaReset, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySigmaDeltaResetModelFixed(AbstractSigmaDeltaModel):
    """Lava's sigma-delta arithmetic (`AbstractSigmaDeltaModel.dynamics`) with the variable types
    of its bit-accurate fixed-point model, restarted once per window before the step's update."""

    a_in = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    sigma: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    act: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    residue: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    error: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    spike_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=3)
    state_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=3)
    cum_error: np.ndarray = LavaPyType(np.ndarray, bool, precision=1)

    def run_spk(self) -> None:
        p = self.proc_params
        if self.time_step % p["reset_interval"] == p["reset_offset"] % p["reset_interval"]:
            for name in ("sigma", "act", "residue", "error"):
                getattr(self, name)[:] = 0
        scaled = self.dynamics(self.a_in.recv())
        self.s_out.send(np.right_shift(scaled, self.state_exp))


class _SamplerModel(PyLoihiProcessModel):
    s_in = None
    samples = None

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._sum = None

    def run_spk(self) -> None:
        p = self.proc_params
        data = np.asarray(self.s_in.recv()).astype(np.float64)
        w = p["window"]
        if self._sum is None or self.time_step % w == p["reset_offset"] % w:
            self._sum = np.zeros_like(data)
        self._sum = self._sum + data
        n, phase = divmod(self.time_step, w)
        if phase == 0 and 1 <= n <= self.samples.shape[0]:
            self.samples[n - 1] = self._sum.astype(self.samples.dtype)


@implements(proc=WindowFiringBits, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyWindowFiringBitsFixed(PyLoihiProcessModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    bits: np.ndarray = LavaPyType(np.ndarray, np.int64)
    totals: np.ndarray = LavaPyType(np.ndarray, np.int32)
    raster_bits: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._fired = None

    def run_spk(self) -> None:
        p = self.proc_params
        spikes = np.asarray(self.s_in.recv()) != 0
        n, phase = divmod(self.time_step - p["offset"], p["window"])
        if self.time_step < p["offset"] or n >= self.bits.shape[0]:
            return
        if self._fired is None or phase == 0:
            self._fired = np.zeros(spikes.shape, dtype=bool)
        if spikes.any():
            self._fired |= spikes
            self.totals[n] += int(spikes.sum())
            self.bits[n] = pack_bits(self._fired)
            if n == p["raster_window"]:
                self.raster_bits[phase] = pack_bits(spikes)


@implements(proc=WindowSampler, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyWindowSamplerFixed(_SamplerModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    samples: np.ndarray = LavaPyType(np.ndarray, np.int32)


