"""Two small Lava processes the deployment needs and Lava lacks: an image spike generator and a
per-sample spike counter. Each has a floating-point and a fixed-point CPU model (identical logic).

Why custom: running N samples as one long Lava run (instead of N runs, each paying seconds of
start-up) needs inputs generated on the fly and results binned per sample. Lava's ring-buffer
source would hold every spike of every sample in memory (784 x N x steps), and a Monitor would
record every neuron at every step. On a Loihi system both jobs belong to the embedded CPUs /
host, which is where these models run too.

This module imports Lava at import time; `deploy` imports it only after `lava_api.require_lava()`.
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

from neurohebb.backends.lava.encoding import check_coding, encode  # noqa: E402


class ImageSpikeGenerator(AbstractProcess):
    """Sends sample n's spike train during steps ``n*window + 1 .. n*window + steps`` (1-based),
    then ``window - steps`` silent steps so the network settles before the next sample."""

    def __init__(self, *, images: np.ndarray, steps: int, window: int, coding: str = "rate", seed: int = 0,
                 sample_offset: int = 0) -> None:
        images = np.asarray(images)
        flat = images.reshape(len(images), -1)
        check_coding(coding)
        super().__init__(steps=steps, window=window, coding=coding, seed=seed, sample_offset=sample_offset)
        self.images = Var(shape=flat.shape, init=flat.astype(np.int32))
        self.s_out = OutPort(shape=(flat.shape[1],))


class WindowSpikeCounter(AbstractProcess):
    """Counts the spikes of each neuron per sample window; optionally keeps one window's raster.

    A spike at step t (1-based) belongs to window ``(t - offset) // window``.
    """

    def __init__(self, *, shape: tuple[int], window: int, num_windows: int, offset: int, raster_window: int = -1) -> None:
        super().__init__(shape=shape, window=window, num_windows=num_windows, offset=offset, raster_window=raster_window)
        self.s_in = InPort(shape=shape)
        self.counts = Var(shape=(num_windows,) + tuple(shape), init=0)
        self.raster = Var(shape=(window,) + tuple(shape), init=0)


class _GeneratorModel(PyLoihiProcessModel):
    images = None
    s_out = None

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._current = -1
        self._train = None

    def run_spk(self) -> None:
        p = self.proc_params
        steps, window = p["steps"], p["window"]
        n, phase = divmod(self.time_step - 1, window)
        out = np.zeros(self.images.shape[1], dtype=np.int32)
        if n < self.images.shape[0] and phase < steps:
            if n != self._current:
                imgs = self.images[n:n + 1].astype(np.uint8)
                self._train = encode(imgs, steps, p["coding"], p["seed"], p["sample_offset"] + n)[0]
                self._current = n
            out = self._train[phase].astype(np.int32)
        self.s_out.send(out)


@implements(proc=ImageSpikeGenerator, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyImageSpikeGeneratorFixed(_GeneratorModel):
    images: np.ndarray = LavaPyType(np.ndarray, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)


@implements(proc=ImageSpikeGenerator, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyImageSpikeGeneratorFloat(_GeneratorModel):
    images: np.ndarray = LavaPyType(np.ndarray, np.int32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


class _CounterModel(PyLoihiProcessModel):
    s_in = None
    counts = None
    raster = None

    def run_spk(self) -> None:
        p = self.proc_params
        spikes = self.s_in.recv() != 0
        n, phase = divmod(self.time_step - p["offset"], p["window"])
        if self.time_step >= p["offset"] and n < self.counts.shape[0]:
            self.counts[n] += spikes.astype(self.counts.dtype)
            if n == p["raster_window"]:
                self.raster[phase] = spikes.astype(self.raster.dtype)


@implements(proc=WindowSpikeCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyWindowSpikeCounterFixed(_CounterModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int32)
    raster: np.ndarray = LavaPyType(np.ndarray, np.int32)


@implements(proc=WindowSpikeCounter, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyWindowSpikeCounterFloat(_CounterModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int32)
    raster: np.ndarray = LavaPyType(np.ndarray, np.int32)
