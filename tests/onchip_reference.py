"""A slow, obviously-ordered reference of the on-chip closed loop: Lava's process order written
step by step with `backends.lava.sop.SopEngine` as the learning engine. Tests hold the fast
engine (`neurohebb.onchip.engine`) to it without starting Lava."""
from __future__ import annotations

import numpy as np

from neurohebb.backends.lava.encoding import encode
from neurohebb.backends.lava.sop import SopEngine

ACT, UV = 6, 2**23


def reference_loop(images, w0, rule, traces, t_epoch, seed, steps, gap, vth, inh_weight, inh_exp, weight_exp, lateral=False,
                   lat_weight=0, lat_exp=0):
    """Weights after every sample window and WTA spike counts per WTA window (steps 2 .. window + 1
    of a sample's window, as the WTA resets), global step by step.
    ``lateral``: the inhibition is a K x K Dense from the WTA back onto itself (no interneuron);
    ``lat_weight`` > 0: that K x K Dense (weight ``lat_weight``, exponent ``lat_exp``) as well as
    the interneuron (both paths)."""
    window = steps + gap
    n = len(images)
    trains = encode(np.asarray(images).reshape(n, -1), steps, "rate")
    eng = SopEngine(rule, w0, traces, t_epoch, seed)
    k, i = w0.shape
    a_buff = np.zeros(k, dtype=np.int64)  # Dense output computed at t - 1, delivered at t
    inter_buff = 0  # to_interneuron output
    inh_buff = 0  # inhibition delivered at t
    v = np.zeros(k, dtype=np.int64)
    inter_spiked_prev = False
    lat_buff = 0  # lateral Dense output computed at t - 1, delivered at t
    weights, counts = [], np.zeros((n, k), dtype=np.int64)
    inh_value = -(inh_weight << inh_exp)
    for t in range(1, n * window + 2):  # + 1: the last WTA window ends a step after the last sample's
        s_n, phase = divmod(t - 1, window)
        pre = trains[s_n, phase] if s_n < n and phase < steps else np.zeros(i, dtype=bool)
        # Dense (run_spk): send the buffer, then accumulate this step's input with the current weights
        a_out = a_buff
        acc = eng.state.weights.astype(np.int64)[:, pre].sum(axis=1)
        a_buff = acc << weight_exp if weight_exp > 0 else acc >> -weight_exp
        # interneuron path: inh Dense sends what it got from the interneuron at t - 1
        inh_out = inh_value if inter_spiked_prev else 0
        if lateral:  # the lateral Dense sends what the WTA spiked at t - 1, every spike weighted
            inh_out = lat_buff
        elif lat_weight:  # both paths: the two Dense outputs add in the WTA's input
            inh_out = inh_out + lat_buff
        # WTA LIFReset (reset at t % window == 2)
        if t % window == 2 % window:
            v[:] = 0
        u = (a_out + inh_out) << ACT
        u = (u + 2**31) % 2**32 - 2**31  # Lava shifts the summed input in int32
        u = np.where(u > UV, u - 2 * UV, u)
        u = np.where(u <= -UV, u + 2 * UV, u)
        v = np.clip(v + u, -UV + 1, UV - 1)
        post = v > (vth << ACT)
        v[post] = 0
        # interneuron: fires at t if the to_interneuron Dense delivered any spike (sent at t - 1)
        inter_spiked = inter_buff > 0
        inter_buff = int(post.sum())
        inter_spiked_prev = inter_spiked
        lat_buff = (inh_value if lateral else -(lat_weight << lat_exp)) * int(post.sum())
        # window of the WTA step: sample (t - 2) // window
        w_n = (t - 2) // window
        if 0 <= w_n < n:
            counts[w_n] += post
        eng.step(pre, post)
        if t % window == 0:
            weights.append(eng.weights)
    return np.stack(weights), counts
