"""Where datasets are looked for and where downloads go.

Why separate search and download locations: the shared folder beside the checkout is
read-only input, so downloads go to a user cache (or NEUROHEBB_DATA_DIR), and both are
searched when no directory is given.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "NEUROHEBB_DATA_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
CACHE_DIR = Path("~/.cache/neurohebb")


def download_root() -> Path:
    """Where downloads go by default: $NEUROHEBB_DATA_DIR, else ~/.cache/neurohebb."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else CACHE_DIR.expanduser()


def search_roots() -> list[Path]:
    """Data directories searched when none is given, in order."""
    if os.environ.get(ENV_DATA_DIR):
        return [download_root()]
    roots = [SHARED_DATA] if SHARED_DATA.is_dir() else []
    return roots + [CACHE_DIR.expanduser()]


def default_data_dir() -> Path:
    """$NEUROHEBB_DATA_DIR if set, else <repo>/../shared/data if it exists, else ~/.cache/neurohebb."""
    return search_roots()[0]
