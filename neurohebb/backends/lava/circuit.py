"""Build the mapped circuit (`mapping.LavaNetwork`) as connected Lava processes.

Why one builder: inference (`deploy`) and on-chip learning (`learning`) run the same circuit --
generator, optional TTFS relay, feed-forward synapses, WTA neurons, inhibitory interneuron,
readout -- and its timing offsets must be identical to the NumPy twin's (`emulate`). Every
offset below follows from one rule: a Dense process delivers at step t + 1 what it received at
step t, and the WTA sees a sample's first input at step ``n * window + 1 + lead``.

Lateral inhibition is a K x K inhibitory Dense from the WTA's spikes back onto its own input
(diagonal included): by the same rule a spike at t inhibits every WTA neuron at t + 1, and k
spikes in a step inhibit k times, summed with the feed-forward current in the WTA's one input
port (`neurohebb.onchip.engine.Circuit` ``lat_weight``). ``lateral=True`` puts it in place of
the interneuron (at the interneuron's weight); ``lateral_weight`` adds it beside the interneuron
(the on-chip presets' circuit). `deploy lava` and its NumPy twin keep the interneuron alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ConfigError
from .lava_api import require_lava, sign_mode
from .mapping import READOUT_VTH, TAGS, LavaNetwork

RELAY_WEIGHT = 255  # one relay input spike: a current far above the relay threshold of 1


@dataclass
class CircuitProcesses:
    """Handles on the processes whose state is read after a run."""

    generator: Any
    synapses: Any  # the feed-forward Dense (or `procs.learning_probe.ReadableLearningDense`)
    wta: Any
    counter: Any  # WTA spikes per sample window (+ one window's raster)
    inter_counter: Any | None  # interneuron spikes per window (None in currents mode)
    reader: Any | None  # readout potentials at the end of each sample
    junk_reads: int  # reads the Read process makes before sample 0 ends
    pre_sink: Any | None = None  # spikes entering the synapses, per step (learning runs; a SpikeRing)
    post_sink: Any | None = None  # WTA spikes per step (learning runs; a SpikeRing)


def total_steps(num_samples: int, net: LavaNetwork) -> int:
    """Steps that play ``num_samples`` whole windows (the last one ends at N * window + lead + 1)."""
    c = net.circuit
    return num_samples * c.window + c.lead + 1


def build(net: LavaNetwork, images: np.ndarray, tag: str = "fixed_pt", sample_offset: int = 0,
          raster_sample: int = -1, learning_rule=None, record_steps: int = 0, wta_neuron=None,
          lateral: bool = False, lateral_weight: tuple[int, int] | None = None) -> CircuitProcesses:
    """Create and connect the processes for ``images``; nothing runs yet.

    ``learning_rule`` (a Lava `Loihi2FLearningRule`) makes the feed-forward synapses a
    `LearningDense` that receives the WTA spikes as back-propagated action potentials (the
    `learning_probe` subclass, whose weights read back packed);
    ``record_steps`` > 0 adds ring buffers recording the synapses' pre and post spikes (packed).
    ``wta_neuron`` replaces `LIFReset` for the WTA: a callable taking LIFReset's keyword
    arguments (e.g. a partial of `procs.harmonic_lif.HarmonicLIF`). With a `Loihi3FLearningRule`
    its ``s_out_bap`` and ``s_out_y1..3`` feed the synapses' spike times and post traces.
    ``lateral``: inhibition through K x K WTA-to-WTA synapses instead of the interneuron (module
    docstring); the spiking WTA only, and then ``inter_counter`` is None. ``lateral_weight``
    (mantissa, exponent): K x K WTA-to-WTA synapses of that weight *as well as* the interneuron
    (the on-chip presets' circuit: a weak inhibition one step after a spike, the strong one a
    step later; `neurohebb.onchip.engine.Circuit` ``lat_weight``, ``lat_exp``).
    """
    if tag not in TAGS:
        raise ConfigError(f"--tag {tag!r} is unknown; choose one of: {', '.join(TAGS)}")
    if learning_rule is not None and tag != "fixed_pt":
        raise ConfigError("on-chip learning runs Lava's bit-approximate fixed-point model; use tag fixed_pt")
    L = require_lava()
    from .procs import spike_io

    c = net.circuit
    n, k, window, lead = len(images), net.num_neurons, c.window, c.lead
    fixed = tag == "fixed_pt"
    gen = spike_io.ImageSpikeGenerator(images=images, steps=c.steps, window=window, coding=c.coding, seed=c.seed,
                                       sample_offset=sample_offset)
    source = gen.s_out
    if c.coding == "ttfs":
        # Relay: the pixel's single spike starts a persistent current; the relay fires every step
        # until its reset at the end of the input (phase `steps`, received at n*window + 2 + steps).
        n_in = net.num_inputs
        eye = np.eye(n_in, dtype=np.int32) * RELAY_WEIGHT
        relay_syn = (L.Dense(weights=eye, num_weight_bits=8, sign_mode=sign_mode("excitatory"), name="relay_synapses")
                     if fixed else L.Dense(weights=eye.astype(np.float64), name="relay_synapses"))
        relay = L.LIFReset(shape=(n_in,), du=0, dv=0, vth=1, reset_interval=window,
                           reset_offset=(2 + c.steps) % window, name="relay")
        gen.s_out.connect(relay_syn.s_in)
        relay_syn.a_out.connect(relay.a_in)
        source = relay.s_out

    if c.wta == "currents":
        if lateral or lateral_weight is not None:
            raise ConfigError("lateral inhibition needs the spiking WTA (wta mode spiking), not currents")
        return _build_currents(L, spike_io, net, gen, source, n, fixed)
    if learning_rule is not None:
        from .procs import learning_probe

        syn = learning_probe.ReadableLearningDense(**net.ff.dense_kwargs(), learning_rule=learning_rule,
                                                   name="plastic_synapses")
    elif fixed:
        syn = L.Dense(**net.ff.dense_kwargs(), name="synapses")
    else:
        syn = L.Dense(weights=net.ff_float, name="synapses")
    three_factor = isinstance(learning_rule, L.Loihi3FLearningRule)
    if three_factor and wta_neuron is None:
        raise ConfigError("a Loihi3FLearningRule reads post traces the WTA neuron writes; pass wta_neuron "
                          "(e.g. procs.harmonic_lif.HarmonicLIF)")
    wta = (wta_neuron or L.LIFReset)(shape=(k,), du=4095 if fixed else 1.0, dv=0, vth=net.vth,
                                     reset_interval=window, reset_offset=(1 + lead) % window, name="wta")
    counter = spike_io.WindowSpikeCounter(shape=(k,), window=window, num_windows=n, offset=1 + lead,
                                          raster_window=raster_sample)
    source.connect(syn.s_in)
    syn.a_out.connect(wta.a_in)
    wta.s_out.connect(counter.s_in)
    inter_counter = None
    if lateral:
        _connect_lateral(L, net, wta, fixed, (int(net.inh_weight), int(net.inh_exp)))
    else:
        inter_counter = _connect_interneuron(L, spike_io, net, wta, n, fixed)
        if lateral_weight is not None:
            _connect_lateral(L, net, wta, fixed, lateral_weight)
    if three_factor:
        wta.s_out_bap.connect(syn.s_in_bap)
        for i in (1, 2, 3):
            getattr(wta, f"s_out_y{i}").connect(getattr(syn, f"s_in_y{i}"))
    elif learning_rule is not None:
        wta.s_out.connect(syn.s_in_bap)

    reader, junk = None, 0
    if net.readout is not None:
        ro_syn = (L.Dense(**net.readout.dense_kwargs(), name="readout_synapses")
                  if fixed else L.Dense(weights=net.readout_float, name="readout_synapses"))
        readout = L.LIFReset(shape=(net.num_classes,), du=4095 if fixed else 1.0, dv=0, vth=READOUT_VTH,
                             reset_interval=window, reset_offset=(2 + lead) % window, name="readout")
        wta.s_out.connect(ro_syn.s_in)
        ro_syn.a_out.connect(readout.a_in)
        # read at the end of WTA step `steps`: global step n*window + 1 + lead + steps
        junk = 1 if lead + c.steps >= window else 0
        reader = L.Read(buffer=n + junk, interval=window, offset=(lead + c.steps) % window)
        reader.connect_var(readout.v)

    pre_sink = post_sink = None
    if record_steps > 0:
        from .procs import learning_probe

        pre_sink = learning_probe.SpikeRing(shape=(net.num_inputs,), buffer=record_steps)
        post_sink = learning_probe.SpikeRing(shape=(k,), buffer=record_steps)
        source.connect(pre_sink.a_in)
        wta.s_out.connect(post_sink.a_in)
    return CircuitProcesses(gen, syn, wta, counter, inter_counter, reader, junk, pre_sink, post_sink)


def _connect_interneuron(L, spike_io, net: LavaNetwork, wta, n: int, fixed: bool):
    """WTA -> interneuron -> WTA: any WTA spike at t, the interneuron at t + 1, inhibition at t + 2.
    Returns the interneuron's spike counter."""
    c = net.circuit
    k, window, lead = net.num_neurons, c.window, c.lead
    # the interneuron fires in every step in which any WTA neuron fired (threshold 0, no memory)
    ones = np.ones((1, k), dtype=np.int32)
    to_inter = (L.Dense(weights=ones, num_weight_bits=8, sign_mode=sign_mode("excitatory"), name="to_interneuron")
                if fixed else L.Dense(weights=ones.astype(np.float64), name="to_interneuron"))
    inter = L.LIFReset(shape=(1,), du=4095 if fixed else 1.0, dv=4095 if fixed else 1.0, vth=0,
                       reset_interval=window, reset_offset=(2 + lead) % window, name="interneuron")
    inh = (L.Dense(weights=net.inhibition_column(), num_weight_bits=8, weight_exp=net.inh_exp,
                   sign_mode=sign_mode("inhibitory"), name="inhibition")
           if fixed else L.Dense(weights=-np.full((k, 1), float(net.inhibition_value)), name="inhibition"))
    inter_counter = spike_io.WindowSpikeCounter(shape=(1,), window=window, num_windows=n, offset=2 + lead)
    wta.s_out.connect(to_inter.s_in)
    to_inter.a_out.connect(inter.a_in)
    inter.s_out.connect(inh.s_in)
    inh.a_out.connect(wta.a_in)
    inter.s_out.connect(inter_counter.s_in)
    return inter_counter


def _connect_lateral(L, net: LavaNetwork, wta, fixed: bool, weight: tuple[int, int]) -> None:
    """WTA -> WTA: K x K inhibitory synapses (diagonal included) of ``weight`` = (mantissa,
    exponent); a spike at t inhibits at t + 1."""
    k = net.num_neurons
    mant, exp = weight
    lat = (L.Dense(weights=np.full((k, k), -mant, dtype=np.int32), num_weight_bits=8,
                   weight_exp=exp, sign_mode=sign_mode("inhibitory"), name="lateral_inhibition")
           if fixed else L.Dense(weights=-np.full((k, k), float(mant * 2.0**exp)), name="lateral_inhibition"))
    wta.s_out.connect(lat.s_in)
    lat.a_out.connect(wta.a_in)


def _build_currents(L, spike_io, net: LavaNetwork, gen, source, n: int, fixed: bool) -> CircuitProcesses:
    """Integrator neurons (never reaching their threshold) read at the end of each sample's input."""
    c = net.circuit
    k, window, lead = net.num_neurons, c.window, c.lead
    syn = L.Dense(**net.ff.dense_kwargs(), name="synapses") if fixed else L.Dense(weights=net.ff_float, name="synapses")
    neurons = L.LIFReset(shape=(k,), du=4095 if fixed else 1.0, dv=0, vth=net.vth, reset_interval=window,
                         reset_offset=(1 + lead) % window, name="integrators")
    source.connect(syn.s_in)
    syn.a_out.connect(neurons.a_in)
    counter = spike_io.WindowSpikeCounter(shape=(k,), window=window, num_windows=n, offset=1 + lead)
    neurons.s_out.connect(counter.s_in)  # stays at zero unless a potential overflows the threshold
    junk = 1 if lead + c.steps >= window else 0
    reader = L.Read(buffer=n + junk, interval=window, offset=(lead + c.steps) % window)
    reader.connect_var(neurons.v)
    return CircuitProcesses(gen, syn, neurons, counter, None, reader, junk)
