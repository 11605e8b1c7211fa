"""Download the canonical dataset files, verified against their published MD5 checksums.

Sources and checksums are those torchvision uses (pytorch/vision, torchvision/datasets/mnist.py:
`MNIST.mirrors/resources`, `FashionMNIST.mirrors/resources`; torchvision/datasets/cifar.py:
`CIFAR10.url/tgz_md5`). Each file is streamed to a temporary file in the destination folder,
hashed while it arrives, and renamed into place only when the checksum matches, so an
interrupted or corrupted download never leaves a file that looks complete. Mirrors are tried
in order; NEUROHEBB_DOWNLOAD_BASE_URL (or `base_url`) replaces them, e.g. for a local copy.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from ..atomic import replace_atomically
from ..errors import DataError
from .registry import get_spec

ENV_BASE_URL = "NEUROHEBB_DOWNLOAD_BASE_URL"
CHUNK = 1 << 16


@dataclass(frozen=True)
class Resource:
    filename: str
    md5: str


@dataclass(frozen=True)
class Source:
    mirrors: tuple[str, ...]  # base URLs ending in '/'; the filename is appended
    files: tuple[Resource, ...]


SOURCES: dict[str, Source] = {
    # The S3 mirror first: yann.lecun.com often refuses automated downloads.
    "mnist": Source(
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        (
            Resource("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            Resource("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
            Resource("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            Resource("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
    ),
    "fashion_mnist": Source(
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        (
            Resource("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            Resource("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
            Resource("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            Resource("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
    ),
    "cifar10": Source(
        ("https://www.cs.toronto.edu/~kriz/",),
        (Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
    ),
}


class _Failed(Exception):
    """One mirror failed for one file; the next mirror is tried."""


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fetch_once(url: str, dest: Path, md5: str, progress: bool, timeout: float) -> None:
    """Stream `url` into a temp file beside `dest`; rename it into place only if the MD5 matches."""
    from tqdm.auto import tqdm

    from .. import __version__

    def stream_and_check(tmp: Path) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with open(tmp, "wb") as out:
            request = Request(url, headers={"User-Agent": f"neurohebb/{__version__}"})
            with urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) mirrors or a user-given base URL
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=not progress, leave=False) as bar:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise _Failed(f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5})")

    try:
        replace_atomically(dest, stream_and_check, suffix=".part")
    except BaseException as exc:
        if isinstance(exc, _Failed):
            raise
        if isinstance(exc, HTTPError):
            raise _Failed(f"HTTP {exc.code} {exc.reason}") from exc
        if isinstance(exc, (OSError, ValueError, HTTPException)):
            # URLError and timeouts are OSErrors; ValueError: a malformed URL.
            raise _Failed(str(getattr(exc, "reason", None) or exc or type(exc).__name__)) from exc
        raise


def fetch(urls: list[str], dest: Path, md5: str, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download `dest` from the first of `urls` that works and matches `md5`; skip it if already valid."""
    if dest.is_file() and md5_file(dest) == md5:
        return dest
    reasons = []
    for url in urls:
        try:
            _fetch_once(url, dest, md5, progress, timeout)
            return dest
        except _Failed as exc:
            reasons.append(f"{url}: {exc}")
    raise DataError(
        f"could not download {dest.name}: {'; '.join(reasons)}; copy the files into {dest.parent} by hand or pass --data-dir"
    )


def download_dataset(name: str, folder: str | Path, *, base_url: str | None = None, progress: bool = True, timeout: float = 60.0) -> list[Path]:
    """Fetch the canonical files of `name` into `folder` (created if needed); returns their paths.

    'digits' is bundled with scikit-learn and downloads nothing. `base_url` (or
    $NEUROHEBB_DOWNLOAD_BASE_URL) replaces the mirrors: files are fetched from base_url + filename.
    """
    spec = get_spec(name)
    if spec.name not in SOURCES:
        return []
    source = SOURCES[spec.name]
    base_url = base_url or os.environ.get(ENV_BASE_URL) or None
    mirrors = [base_url if base_url.endswith("/") else base_url + "/"] if base_url else list(source.mirrors)
    folder = Path(folder).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder} ({exc.strerror or exc}); pass --dir with a writable folder") from exc
    return [
        fetch([m + res.filename for m in mirrors], folder / res.filename, res.md5, progress=progress, timeout=timeout)
        for res in source.files
    ]
