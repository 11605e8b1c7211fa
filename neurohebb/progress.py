"""Progress bars: tqdm when installed, otherwise a silent stand-in.

Why the fallback: the core must run from the source tree on a GPU box that has only torch
(and numpy); a missing progress-bar library must not stop a benchmark.
"""
from __future__ import annotations

try:  # pragma: no cover - exercised implicitly
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    class tqdm:  # type: ignore[no-redef]
        def __init__(self, iterable=None, total=None, **_):
            self.iterable, self.n = iterable, 0

        def __iter__(self):
            for item in self.iterable:
                yield item
                self.n += 1

        def update(self, k: int = 1) -> None:
            self.n += k

        def set_postfix_str(self, *_args, **_kwargs) -> None:
            pass

        def close(self) -> None:
            pass

__all__ = ["tqdm"]
