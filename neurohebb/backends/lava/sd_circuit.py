"""The sigma-delta network (`sigma_delta.SDNetwork`) as connected Lava processes, and its run.

Processes: `ImageGradedGenerator` -> per stage a fixed-point `Sparse` (graded, 24-bit messages) and a
`SigmaDeltaReset` (Lava's SigmaDelta restarted per window; ReLU for hidden stages, no activation for the readout) -> `WindowSampler` on the
readout; a `WindowSpikeCounter` per stage records graded spikes per sample (and one raster).
Only the bit-accurate fixed-point models are used (``fixed_pt``): the NumPy twin reproduces them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError
from .lava_api import require_lava, sign_mode
from .sigma_delta import SDNetwork, SDRun

MESSAGE_BITS = 24


@dataclass
class SDTiming:
    build_seconds: float
    run_seconds: float
    steps: int


def run_lava_sd(net: SDNetwork, images: np.ndarray, raster_sample: int = 0, progress: bool = False,
                chunk_samples: int = 50) -> tuple[SDRun, SDTiming]:
    """Play ``images`` (uint8) back to back in Lava's fixed-point simulator."""
    from . import compat
    from .procs import graded_io, spike_io

    images = np.asarray(images)
    n = len(images)
    if n < 1:
        raise ConfigError("no samples to deploy; pass --samples N with N >= 1")
    L = require_lava()
    sdn = compat.import_lava_module("lava.proc.sdn.process")
    Sparse = compat.import_lava_module("lava.proc.sparse.process").Sparse
    t0 = time.perf_counter()
    w = net.window
    gen = graded_io.ImageGradedGenerator(images=images, window=w)
    source = gen.s_out
    counters = []
    last = len(net.stages) - 1
    for i, st in enumerate(net.stages):
        syn = Sparse(weights=st.weights, num_message_bits=MESSAGE_BITS, weight_exp=st.weight_exp,
                     num_weight_bits=st.num_weight_bits, sign_mode=sign_mode("mixed"), name=f"{st.name}_synapses")
        mode = sdn.ActivationMode.RELU if st.relu else sdn.ActivationMode.UNIT
        neurons = graded_io.SigmaDeltaReset(shape=(st.size,), vth=net.vth(i), bias=(st.bias >> st.state_exp).astype(np.int32),
                                            act_mode=mode, state_exp=st.state_exp, reset_interval=w,
                                            reset_offset=net.counter_offset(i) % w, name=f"{st.name}_neurons")
        counter = spike_io.WindowSpikeCounter(shape=(st.size,), window=w, num_windows=n, offset=net.counter_offset(i),
                                              raster_window=raster_sample if 0 <= raster_sample < n else -1)
        source.connect(syn.s_in)
        syn.a_out.connect(neurons.a_in)
        neurons.s_out.connect(counter.s_in)
        counters.append(counter)
        source = neurons.s_out
        if i == last:
            sampler = graded_io.WindowSampler(shape=(st.size,), window=w, num_windows=n,
                                              reset_offset=net.counter_offset(i) % w)
            neurons.s_out.connect(sampler.s_in)
    cfg = L.Loihi2SimCfg(select_tag="fixed_pt")
    build = time.perf_counter() - t0
    total = n * w
    bar = None
    if progress:
        from ...progress import tqdm

        bar = tqdm(total=n, desc="lava sigma-delta", unit="sample")
    t1 = time.perf_counter()
    done = 0
    try:
        while done < total:
            todo = min(chunk_samples * w, total - done)
            gen.run(condition=L.RunSteps(num_steps=todo), run_cfg=cfg)
            done += todo
            if bar is not None:
                bar.n = done // w
                bar.refresh()
        seconds = time.perf_counter() - t1
        readout = np.rint(np.asarray(sampler.samples.get())).astype(np.int64)
        counts = [np.asarray(c.counts.get()).astype(np.int64) for c in counters]
        rasters = [np.asarray(c.raster.get()).astype(np.int64) for c in counters]
    finally:
        if bar is not None:
            bar.close()
        gen.stop()
    nonzero_in = (images.reshape(n, -1) != 0).sum(axis=1)
    run = SDRun(readout, counts, rasters if 0 <= raster_sample < n else None, nonzero_in)
    return run, SDTiming(build, seconds, total)
