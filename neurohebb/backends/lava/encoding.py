"""Input spike coding: turning 8-bit pixels into spike trains a chip can receive.

Why integer arithmetic only: the Lava input process and the NumPy emulation of the deployed
circuit both call these functions, so every spike is reproducible bit for bit on any machine.

Codings (``p`` a pixel in 0..255, ``T`` the steps per sample, ``c = round(T * p / 255)``):

``rate``
    Deterministic rate code: pixel ``i`` spikes at step ``t`` (0-based) when
    ``floor((2(t+1)p + 255) / 510)`` exceeds ``floor((2tp + 255) / 510)`` -- a regular train of
    exactly ``c`` spikes, as an integrate-and-fire encoder with a half-full start produces. The
    deployed neurons integrate ``sum_i c_i w_i``, the model's ``W x`` quantised to ``T`` levels.
``poisson``
    Bernoulli spikes with probability ``p / 255`` per step from a generator seeded with
    ``(seed, sample index)``: the textbook rate code, noisier (the count varies by ``sqrt(c)``).
``ttfs``
    Time to first spike: one spike at step ``T - c`` (none when ``c = 0``); brighter pixels spike
    earlier. Neurons whose synaptic current does not decay integrate ``c_i`` steps of ``w_i``,
    the same ``sum_i c_i w_i`` as the rate code, with one spike per pixel instead of ``c``.
"""
from __future__ import annotations

import numpy as np

from ...errors import ConfigError

CODINGS = ("rate", "poisson", "ttfs")


def check_coding(coding: str) -> str:
    if coding not in CODINGS:
        raise ConfigError(f"spike coding {coding!r} is unknown; choose one of: {', '.join(CODINGS)}")
    return coding


def _as_pixels(images: np.ndarray) -> np.ndarray:
    pixels = np.asarray(images)
    if pixels.dtype != np.uint8:
        raise ConfigError(f"spike encoders take uint8 pixels (0..255), got dtype {pixels.dtype}; pass the dataset's raw images")
    return pixels.reshape(pixels.shape[0], -1).astype(np.int64)


def spike_counts(images: np.ndarray, steps: int) -> np.ndarray:
    """``c = round(steps * p / 255)`` per pixel (halves round up): spikes of the rate code, [N, I]."""
    p = _as_pixels(images)
    return (2 * steps * p + 255) // 510


def encode_step(images: np.ndarray, step: int, steps: int, coding: str, seed: int = 0,
                sample_offset: int = 0) -> np.ndarray:
    """Spikes of every image at one step (0-based), as a bool array [N, I].

    ``sample_offset`` is the dataset index of ``images[0]``: it seeds the Poisson code, so a
    sample gets the same spikes whether it is encoded alone or in a batch.
    """
    check_coding(coding)
    if not 0 <= step < steps:
        return np.zeros((len(images), int(np.prod(np.shape(images)[1:]))), dtype=bool)
    p = _as_pixels(images)
    if coding == "rate":
        return (2 * (step + 1) * p + 255) // 510 > (2 * step * p + 255) // 510
    if coding == "ttfs":
        return (2 * steps * p + 255) // 510 == steps - step
    draws = np.stack([_poisson_draws(seed, sample_offset + n, steps, p.shape[1])[step] for n in range(len(p))])
    return draws < p


def encode(images: np.ndarray, steps: int, coding: str, seed: int = 0, sample_offset: int = 0) -> np.ndarray:
    """Whole spike trains, bool [N, steps, I]."""
    check_coding(coding)
    if steps < 1:
        raise ConfigError(f"steps per sample must be >= 1, got {steps}")
    p = _as_pixels(images)
    t = np.arange(steps)[None, :, None]
    if coding == "rate":
        q = p[:, None, :]
        return (2 * (t + 1) * q + 255) // 510 > (2 * t * q + 255) // 510
    if coding == "ttfs":
        return ((2 * steps * p + 255) // 510)[:, None, :] == steps - t
    return np.stack([_poisson_draws(seed, sample_offset + n, steps, p.shape[1]) < p[n] for n in range(len(p))])


def _poisson_draws(seed: int, index: int, steps: int, size: int) -> np.ndarray:
    """Uniform integers in 0..254 per (step, pixel); ``draw < p`` fires with probability p/255."""
    return np.random.default_rng([int(seed), int(index)]).integers(0, 255, size=(steps, size))
