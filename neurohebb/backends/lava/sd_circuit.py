"""The sigma-delta network (`sigma_delta.SDNetwork`) as connected Lava processes, and its run.

Processes: `ImageGradedGenerator` -> per stage a fixed-point `Sparse` or `Conv` (graded, 24-bit
messages) and a `SigmaDeltaReset` (Lava's SigmaDelta restarted per window; ReLU for hidden stages,
no activation for the readout) -> `WindowSampler` on the readout; a `WindowSpikeCounter` per stage
records graded spikes per sample (and one raster). Only the bit-accurate fixed-point models are
used (``fixed_pt``; for `Conv`, `procs.conv_exact`, which computes Lava's sums exactly and faster):
the NumPy twin reproduces them.

Layout: Lava's `Conv` reads and writes (X, Y, C) arrays (width first), the twin (C, H, W) ones.
The neurons on either side of a `Conv` are therefore created in Lava's order and the Sparse
matrices next to them permuted to match (`lava_order`); counts and rasters are mapped back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError, NeurohebbError
from .lava_api import require_lava, sign_mode
from .sigma_delta import SDNetwork, SDRun

MESSAGE_BITS = 24


@dataclass
class SDTiming:
    build_seconds: float
    run_seconds: float
    steps: int
    read_seconds: float = 0.0  # reading the recorded spikes back (Lava sends a Var one element at a time)


def lava_order(shape: tuple[int, ...]) -> np.ndarray:
    """For each neuron of a (C, H, W) map in Lava's (X, Y, C) order, its index in (C, H, W) order."""
    c, h, w = shape
    return np.arange(c * h * w).reshape(c, h, w).transpose(2, 1, 0).ravel()


def lava_kernel(kernel: np.ndarray) -> np.ndarray:
    """A [K, C, kh, kw] correlation kernel as Lava's `Conv` weight [K, kx, ky, C] (a convolution:
    `scipy.signal.convolve2d` flips the kernel, so it is stored flipped)."""
    return np.ascontiguousarray(np.asarray(kernel).transpose(0, 3, 2, 1)[:, ::-1, ::-1, :])


def neuron_orders(net: SDNetwork) -> list[np.ndarray | None]:
    """Per stage, the permutation its neurons are created in (None: the twin's own order)."""
    orders: list[np.ndarray | None] = []
    for i, st in enumerate(net.stages):
        feeds_conv = i + 1 < len(net.stages) and net.stages[i + 1].kind == "conv"
        orders.append(lava_order(st.out_shape) if st.kind == "conv" or feeds_conv else None)
    return orders


def run_lava_sd(net: SDNetwork, images: np.ndarray, raster_sample: int = 0, progress: bool = False,
                chunk_samples: int = 50, conv_model: str = "gemm") -> tuple[SDRun, SDTiming]:
    """Play ``images`` (uint8) back to back in Lava's fixed-point simulator. ``conv_model``
    "gemm" runs `Conv` with `procs.conv_exact` (exactly Lava's sums, faster), "lava" with Lava's
    own `PyConvModelFixed`."""
    from . import compat
    from .procs import graded_io

    images = np.asarray(images)
    n = len(images)
    if n < 1:
        raise ConfigError("no samples to deploy; pass --samples N with N >= 1")
    L = require_lava()
    if conv_model not in ("gemm", "lava"):
        raise ConfigError(f"conv_model must be 'gemm' or 'lava', got {conv_model!r}")
    sdn = compat.import_lava_module("lava.proc.sdn.process")
    Sparse = compat.import_lava_module("lava.proc.sparse.process").Sparse
    Conv = compat.import_lava_module("lava.proc.conv.process").Conv
    t0 = time.perf_counter()
    w = net.window
    gen = graded_io.ImageGradedGenerator(images=images, window=w)
    source = gen.s_out
    counters = []
    last = len(net.stages) - 1
    orders = neuron_orders(net)
    for i, st in enumerate(net.stages):
        order, before = orders[i], (orders[i - 1] if i else None)
        bias = st.bias if order is None else st.bias[order]
        if st.kind == "conv":
            c, h, wd = st.in_shape
            syn = Conv(weight=lava_kernel(st.kernel), input_shape=(wd, h, c), padding=0, stride=st.stride,
                       num_weight_bits=st.num_weight_bits, weight_exp=0, num_message_bits=MESSAGE_BITS,
                       name=f"{st.name}_synapses")
            source.reshape((wd, h, c)).connect(syn.s_in)
            syn_out = syn.a_out.reshape((st.size,))
        else:
            weights = st.weights if order is None else st.weights[order]
            weights = weights if before is None else weights[:, before]
            syn = Sparse(weights=weights.tocsr(), num_message_bits=MESSAGE_BITS, weight_exp=st.weight_exp,
                         num_weight_bits=st.num_weight_bits, sign_mode=sign_mode("mixed"), name=f"{st.name}_synapses")
            source.connect(syn.s_in)
            syn_out = syn.a_out
        mode = sdn.ActivationMode.RELU if st.relu else sdn.ActivationMode.UNIT
        neurons = graded_io.SigmaDeltaReset(shape=(st.size,), vth=net.vth(i), bias=(bias >> st.state_exp).astype(np.int32),
                                            act_mode=mode, state_exp=st.state_exp, reset_interval=w,
                                            reset_offset=net.counter_offset(i) % w, name=f"{st.name}_neurons")
        counter = graded_io.WindowFiringBits(shape=(st.size,), window=w, num_windows=n, offset=net.counter_offset(i),
                                             raster_window=raster_sample if 0 <= raster_sample < n else -1)
        syn_out.connect(neurons.a_in)
        neurons.s_out.connect(counter.s_in)
        counters.append(counter)
        source = neurons.s_out
        if i == last:
            sampler = graded_io.WindowSampler(shape=(st.size,), window=w, num_windows=n,
                                              reset_offset=net.counter_offset(i) % w)
            neurons.s_out.connect(sampler.s_in)
    exceptions = {}
    if conv_model == "gemm":
        from .procs.conv_exact import PyConvModelFixedGemm

        exceptions = {Conv: PyConvModelFixedGemm}
    cfg = L.Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=exceptions)
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
        t2 = time.perf_counter()
        readout = np.rint(np.asarray(sampler.samples.get())).astype(np.int64)
        counts, rasters = [], []
        for st, c, o in zip(net.stages, counters, orders):
            fired = graded_io.unpack_bits(np.rint(np.asarray(c.bits.get())).astype(np.int64), st.size).astype(np.int64)
            totals = np.rint(np.asarray(c.totals.get())).astype(np.int64)
            if not np.array_equal(fired.sum(axis=1), totals):
                raise NeurohebbError(f"stage {st.name}: a neuron sent more than one graded spike in a sample window; "
                                     "the circuit's timing is broken (sigma-delta neurons restart once per window)")
            counts.append(_twin_order(fired, o))
            raster = np.zeros((w, st.size), np.int64)
            if 0 <= raster_sample < n:
                raster = graded_io.unpack_bits(np.rint(np.asarray(c.raster_bits.get())).astype(np.int64), st.size)
            rasters.append(_twin_order(raster.astype(np.int64), o))
    finally:
        if bar is not None:
            bar.close()
        gen.stop()
    read = time.perf_counter() - t2
    nonzero_in = (images.reshape(n, -1) != 0).sum(axis=1)
    run = SDRun(readout, counts, rasters if 0 <= raster_sample < n else None, nonzero_in)
    return run, SDTiming(build, seconds, total, read)


def _twin_order(values: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """Columns recorded in Lava's neuron order, put back in the twin's."""
    if order is None:
        return values
    out = np.empty_like(values)
    out[:, order] = values
    return out
