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


@implements(proc=WindowSampler, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyWindowSamplerFixed(_SamplerModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    samples: np.ndarray = LavaPyType(np.ndarray, np.int32)


