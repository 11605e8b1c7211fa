"""Graded-spike input and output for the sigma-delta deployment (`sigma_delta`): an image delta
generator and a per-window sampler of a graded spike stream. Fixed- and floating-point models
share their logic.

Why these and not Lava's ring buffers: N samples play back to back in one run. The generator
sends, at the first step of sample n's window, the graded spikes ``image_n - image_{n-1}`` (the
sigma-delta code of a sequence of static frames: only changes are sent), so nothing of the
whole test set is held per step. The sampler integrates the graded spikes it receives (the
running sum is the sender's activation when its delta threshold is 1) and records that sum at
one phase of every window: the readout potentials the host takes the argmax of.

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


class ImageDeltaGenerator(AbstractProcess):
    """Sends ``image_n - image_{n-1}`` (image_{-1} = 0) as graded spikes at step ``n*window + 1``."""

    def __init__(self, *, images: np.ndarray, window: int) -> None:
        flat = np.asarray(images).reshape(len(images), -1)
        super().__init__(window=window)
        self.images = Var(shape=flat.shape, init=flat.astype(np.int32))
        self.s_out = OutPort(shape=(flat.shape[1],))


class WindowSampler(AbstractProcess):
    """Integrates graded input spikes; at step ``n*window + phase`` (1-based steps) stores the
    running sum as row n of ``samples``."""

    def __init__(self, *, shape: tuple[int], window: int, num_windows: int, phase: int) -> None:
        super().__init__(shape=shape, window=window, num_windows=num_windows, phase=phase)
        self.s_in = InPort(shape=shape)
        self.samples = Var(shape=(num_windows,) + tuple(shape), init=0)


class _DeltaGeneratorModel(PyLoihiProcessModel):
    images = None
    s_out = None

    def run_spk(self) -> None:
        n, phase = divmod(self.time_step - 1, self.proc_params["window"])
        out = np.zeros(self.images.shape[1], dtype=np.int32)
        if phase == 0 and n < self.images.shape[0]:
            prev = self.images[n - 1] if n > 0 else 0
            out = (self.images[n] - prev).astype(np.int32)
        self.s_out.send(out)


@implements(proc=ImageDeltaGenerator, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyImageDeltaGeneratorFixed(_DeltaGeneratorModel):
    images: np.ndarray = LavaPyType(np.ndarray, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)


@implements(proc=ImageDeltaGenerator, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyImageDeltaGeneratorFloat(_DeltaGeneratorModel):
    images: np.ndarray = LavaPyType(np.ndarray, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


class _SamplerModel(PyLoihiProcessModel):
    s_in = None
    samples = None

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._sum = None

    def run_spk(self) -> None:
        p = self.proc_params
        data = np.asarray(self.s_in.recv())
        self._sum = data.astype(np.float64) if self._sum is None else self._sum + data
        n, phase = divmod(self.time_step - p["phase"], p["window"])
        if phase == 0 and 0 <= n < self.samples.shape[0]:
            self.samples[n] = self._sum.astype(self.samples.dtype)


@implements(proc=WindowSampler, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyWindowSamplerFixed(_SamplerModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    samples: np.ndarray = LavaPyType(np.ndarray, np.int32)


@implements(proc=WindowSampler, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyWindowSamplerFloat(_SamplerModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    samples: np.ndarray = LavaPyType(np.ndarray, float)
