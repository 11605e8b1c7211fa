"""`PolicyQuantizer`: a precision policy as the core layers' quantizer hook.

Why it exists beside the engines: `SoftWTALayer.learn(x, quantizer)` (and so
`neurohebb.engine.train(config, quantizer=...)`) rounds the tensors it computes at five roles
and otherwise runs the float32 rule. That is the quickest way to put any policy on any network,
and it is what other modules (STPN, backends) can reuse. Its arithmetic is float32, so it is
*close to* but not bit-identical with the integer engine; use `FakeQuantEngine` /
`IntegerEngine` (via `neurohebb.precision.training`) when exactness matters -- the sweep does.

Diagnostics are kept per weight shape (one entry per layer unless two layers share a shape):
saturation per role and the stalled fraction; a stalled synapse is one whose proposed update
``lr * dW`` was non-zero but whose stored weight did not change.
"""
from __future__ import annotations

from typing import Any

import torch

from .diagnostics import LayerStats
from .policy import PrecisionPolicy
from .rounding import quantize_codes


class PolicyQuantizer:
    """Callable ``(role, tensor) -> tensor`` applying `policy` with a seeded generator."""

    def __init__(self, policy: PrecisionPolicy | str | None = None, seed: int = 0, device: str | torch.device = "cpu"):
        self.policy = PrecisionPolicy.parse(policy)
        self.generator = torch.Generator(device=torch.device(device)).manual_seed(int(seed))
        self._stats: dict[tuple[int, ...], LayerStats] = {}
        self._pending: dict[str, Any] = {}

    def __call__(self, role: str, t: torch.Tensor) -> torch.Tensor:
        spec = self.policy.spec(role)
        if role == "update":
            self._pending["proposed"] = t  # the normalised update before rounding
        if spec.is_float:
            out, counts, exponent = t, None, None
        else:
            q = quantize_codes(t, spec.fmt, spec.rounding, spec.overflow, self.generator)
            out, counts, exponent = q.values(t.dtype), (q.n_below, q.n_above), q.exponent
        if counts is not None:
            self._pending.setdefault("overflow", []).append((role, t.numel(), *counts))
        if role == "update":
            self._pending["update"] = out
        elif role == "lr":
            self._pending["lr"] = out
        elif role == "weight":
            self._commit(t, out, exponent)
        return out

    def _commit(self, proposed_weight: torch.Tensor, stored: torch.Tensor, exponent: int | None) -> None:
        """At the weight role, file this step's counts under the layer (its weight shape)."""
        key = tuple(stored.shape)
        stats = self._stats.setdefault(key, LayerStats(len(self._stats)))
        stats.steps += 1
        for role, numel, below, above in self._pending.get("overflow", []):
            stats.record_overflow(role, numel, below, above)
        dw, lr, proposed = (self._pending.get(k) for k in ("update", "lr", "proposed"))
        if dw is not None and lr is not None and proposed is not None:
            step = lr.reshape(-1, *([1] * (dw.dim() - 1))) * dw  # the layer's own expression
            old = proposed_weight - step  # the previous weight, up to float32 rounding
            if exponent is not None:
                # a changed weight moves by at least one grid step; float32 error is far below half
                unchanged = (stored - old).abs() < 0.5 * 2.0**exponent
            else:  # float weights: the addition itself absorbed the step
                unchanged = step.abs() <= 0.5 * torch.finfo(stored.dtype).eps * stored.abs()
            intended = (lr.reshape(step.shape[:1] + (1,) * (dw.dim() - 1)) * proposed).abs()
            stats.record_step(intended, unchanged, (stored - old).abs().sum())
        self._pending = {}

    def diagnostics(self) -> list[dict[str, Any]]:
        """Per layer (by weight shape, in order of first update): saturation and stalled fraction."""
        out = []
        for shape, stats in self._stats.items():
            d = stats.to_dict()
            d["weight_shape"] = list(shape)
            out.append(d)
        return out
