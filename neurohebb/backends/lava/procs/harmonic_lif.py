"""The WTA neuron of the default on-chip rule (harmonic-homeostasis) as a Lava process.

Why a process of our own: Lava's `LIFReset` has neither an adaptive threshold nor a way to write
a post trace, and its `LearningLIF` has the learning ports but no reset, no threshold adaptation
and sends nothing on ``s_out_y1..3``. This neuron is what a Loihi 2 neuron program would run for
`neurohebb.onchip.engine` (``Circuit.theta_plus`` > 0, ``written={"y3": ("harmonic", floor)}``):

- Lava's bit-accurate LIF arithmetic (24-bit current and voltage, threshold and input aligned 6
  bits up), voltage and current reset at steps t with ``t % reset_interval == reset_offset``;
- a spike threshold ``vth + theta``; ``theta`` changes only at the reset step, before the
  reset: ``theta += theta_plus * spikes since the last reset``, then ``theta -= theta >>
  theta_decay_shift``. So it is constant while a sample is presented, and a threshold lowered
  by the decay never meets a voltage left over from the previous sample (updated at the write
  step instead, it made neurons fire in the steps between the learning step and the reset);
- at the write step ``t % reset_interval == write_offset``, after the step's own spikes, the
  post trace ``y<trace>`` is written: ``max(round(trace_max / (n + 1)), floor)`` where the
  neuron fired since the last reset, 0 where it did not; n counts the earlier windows it fired
  in (then n grows by one where it fired). The write step must lie after a sample's last
  possible spike and before the next reset.

The written value is held and sent on ``s_out_y1..3`` every step; a `LearningDense` with a
`Loihi3FLearningRule` overwrites its post traces with what it receives each step, so the value
its epoch-end (u) products read is the one sent at the learning step (t % t_epoch == 0), which
must be the write step. Spikes also go out on ``s_out_bap`` (for y0 products).

This module imports Lava at import time; import it after `lava_api.require_lava()`. Imports are
absolute because Lava's compiler also executes this file outside its package.
"""
from __future__ import annotations

import numpy as np

from neurohebb.backends.lava import compat
from neurohebb.errors import ConfigError

compat.install()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.neuron import LearningNeuronModelFixed  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed  # noqa: E402
from lava.proc.lif.process import LearningLIF  # noqa: E402

TRACE_MAX = 127  # 7-bit post traces


class HarmonicLIF(LearningLIF):
    """LIF with reset, adaptive threshold and a neuron-written 1/n post trace (module docstring)."""

    def __init__(self, *, shape: tuple[int, ...], vth: int, reset_interval: int, reset_offset: int,
                 write_offset: int = 0, theta_plus: int = 0, theta_decay_shift: int = 10,
                 harmonic_floor: int = 0, trace: int = 3, du: int = 4095, dv: int = 0, **kwargs) -> None:
        if trace not in (1, 2, 3) or not 0 <= harmonic_floor <= TRACE_MAX or reset_interval < 1:
            raise ConfigError(f"HarmonicLIF needs trace in 1..3, harmonic_floor in 0..{TRACE_MAX}, "
                             f"reset_interval >= 1; got {trace}, {harmonic_floor}, {reset_interval}")
        super().__init__(shape=shape, vth=vth, du=du, dv=dv, reset_interval=reset_interval,
                         reset_offset=reset_offset, write_offset=write_offset, theta_plus=theta_plus,
                         theta_decay_shift=theta_decay_shift, harmonic_floor=harmonic_floor, trace=trace,
                         **kwargs)
        self.theta = Var(shape=shape, init=0)  # adaptive part of the threshold (threshold units)
        self.fired_windows = Var(shape=shape, init=0)  # n: windows the neuron fired in
        self.window_spikes = Var(shape=shape, init=0)  # spikes since the last reset


@implements(proc=HarmonicLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyHarmonicLIFModelFixed(LearningNeuronModelFixed, AbstractPyLifModelFixed):
    """Fixed-point model: Lava's LIF arithmetic plus the neuron program (module docstring)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    theta: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    fired_windows: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    window_spikes: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self) -> None:
        p = self.proc_params
        interval = p["reset_interval"]
        a_in = self.a_in.recv()
        phase = self.time_step % interval
        if phase == p["reset_offset"] % interval:
            self._adapt_threshold()
            self.u *= 0
            self.v *= 0
        self.scale_bias()
        self.subthr_dynamics(activation_in=a_in)
        # threshold register value + adaptive part, MSB-aligned like Lava's threshold
        spikes = self.v > np.left_shift(np.asarray(self.vth, dtype=np.int64) + self.theta.astype(np.int64), self.vth_shift)
        self.reset_voltage(spike_vector=spikes)
        self.window_spikes += spikes.astype(self.window_spikes.dtype)
        if phase == p["write_offset"] % interval:
            self._write_trace()
        self.s_out.send(spikes)
        self.s_out_bap.send(spikes)
        self.s_out_y1.send(self.y1)
        self.s_out_y2.send(self.y2)
        self.s_out_y3.send(self.y3)

    def _write_trace(self) -> None:
        """Write the harmonic rate of the neurons that fired in this window; count the window."""
        p = self.proc_params
        fired = self.window_spikes > 0
        n1 = self.fired_windows.astype(np.int64) + 1
        rate = np.maximum((TRACE_MAX + n1 // 2) // n1, p["harmonic_floor"])  # round(127 / (n + 1))
        getattr(self, f"y{p['trace']}")[:] = np.where(fired, rate, 0)
        self.fired_windows += fired.astype(self.fired_windows.dtype)

    def _adapt_threshold(self) -> None:
        """Raise the threshold by the last window's spikes, decay it; start counting anew."""
        p = self.proc_params
        if p["theta_plus"]:
            theta = self.theta.astype(np.int64) + self.window_spikes.astype(np.int64) * p["theta_plus"]
            self.theta[:] = theta - (theta >> p["theta_decay_shift"])
        self.window_spikes[:] = 0
