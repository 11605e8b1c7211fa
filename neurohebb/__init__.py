"""neurohebb: soft winner-take-all Hebbian networks under neuromorphic-hardware constraints.

The core (config, data, rules, layers, engine) depends on numpy and torch only; the Lava and
Brian2 backends are imported lazily by the commands that need them.
"""
from __future__ import annotations

__version__ = "0.1.0"
