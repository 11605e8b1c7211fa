"""Downloads against a local HTTP server: checksums, mirror fallback, offline errors, and the CLI."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from neurohebb import cli
from neurohebb.data import download as dl
from neurohebb.data import load_dataset
from neurohebb.errors import DataError

MNIST_FILES = [r.filename for r in dl.SOURCES["mnist"].files]


def idx_gz(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return gzip.compress(header + arr.tobytes())


@pytest.fixture()
def served(tmp_path):
    """A tiny MNIST in canonical .gz files, served over HTTP on 127.0.0.1 from a random port."""
    root = tmp_path / "www"
    root.mkdir()
    rng = np.random.default_rng(7)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 6).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 2).astype(np.uint8),
    }
    md5s = {}
    for name, arr in arrays.items():
        data = idx_gz(arr)
        (root / name).write_bytes(data)
        md5s[name] = hashlib.md5(data).hexdigest()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "arrays": arrays, "md5": md5s, "root": root}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def dead_url():
    """A URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture()
def local_checksums(served, monkeypatch):
    """Point the MNIST resource table at the served files' MD5s (the real ones describe the real files)."""
    files = tuple(dl.Resource(n, served["md5"][n]) for n in MNIST_FILES)
    monkeypatch.setitem(dl.SOURCES, "mnist", dl.Source(("http://unused.invalid/",), files))
    return served


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_canonical_checksums_are_the_published_ones():
    # torchvision/datasets/mnist.py and cifar.py (pytorch/vision) publish these MD5s.
    assert dl.SOURCES["mnist"].files[0] == dl.Resource("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873")
    assert dl.SOURCES["cifar10"].files == (dl.Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),)


def test_download_verifies_and_loads(local_checksums, tmp_path):
    folder = tmp_path / "data" / "mnist"
    paths = dl.download_dataset("mnist", folder, base_url=local_checksums["url"], progress=False)
    assert [p.name for p in paths] == MNIST_FILES
    for p in paths:
        assert p.read_bytes() == (local_checksums["root"] / p.name).read_bytes()
    assert _leftovers(folder) == []
    ds = load_dataset("mnist", tmp_path / "data")
    np.testing.assert_array_equal(ds.x_train[:, 0], local_checksums["arrays"]["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(ds.y_test, local_checksums["arrays"]["t10k-labels-idx1-ubyte.gz"])


def test_checksum_mismatch_deletes_the_file_and_errors(served, tmp_path):
    # The served files are not the real MNIST, so the published MD5s cannot match.
    folder = tmp_path / "mnist"
    with pytest.raises(DataError, match=r"could not download train-images-idx3-ubyte\.gz: .*checksum mismatch.*copy the files into"):
        dl.download_dataset("mnist", folder, base_url=served["url"], progress=False)
    assert list(folder.iterdir()) == []


def test_unreachable_url_is_a_one_line_dataerror(dead_url, tmp_path):
    with pytest.raises(DataError) as info:
        dl.download_dataset("cifar10", tmp_path, base_url=dead_url, progress=False)
    message = str(info.value)
    assert message.startswith("could not download cifar-10-python.tar.gz: ")
    assert "refused" in message.lower() and f"copy the files into {tmp_path} by hand or pass --data-dir" in message
    assert "\n" not in message and list(tmp_path.iterdir()) == []


def test_next_mirror_after_failure_and_http_404(served, dead_url, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    dest = dl.fetch([dead_url + name, served["url"] + "missing/" + name, served["url"] + name], tmp_path / name, served["md5"][name], progress=False)
    assert dest.read_bytes() == (served["root"] / name).read_bytes()
    with pytest.raises(DataError, match=r"nope\.gz: HTTP 404 "):
        dl.fetch([served["url"] + "nope.gz"], tmp_path / "nope.gz", "0" * 32, progress=False)


def test_valid_file_is_not_downloaded_again(served, dead_url, tmp_path):
    name = "t10k-images-idx3-ubyte.gz"
    (tmp_path / name).write_bytes((served["root"] / name).read_bytes())
    assert dl.fetch([dead_url + name], tmp_path / name, served["md5"][name], progress=False) == tmp_path / name


def test_load_dataset_download_uses_env_base_url(local_checksums, tmp_path, monkeypatch):
    monkeypatch.setenv(dl.ENV_BASE_URL, local_checksums["url"])
    ds = load_dataset("mnist", tmp_path / "mnist", download=True, progress=False)
    assert ds.source == str(tmp_path / "mnist") and len(ds.y_train) == 6


def test_digits_needs_no_download(tmp_path):
    assert dl.download_dataset("digits", tmp_path / "never") == []
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------- CLI
def test_cli_download_then_check(local_checksums, tmp_path, capsys):
    assert cli.main(["download", "mnist", "--dir", str(tmp_path), "--base-url", local_checksums["url"], "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"ok  {tmp_path / 'mnist' / MNIST_FILES[0]}" in out
    assert "mnist: 6 train / 2 test images 1x28x28" in out
    assert cli.main(["download", "mnist", "--dir", str(tmp_path), "--check"]) == 0


def test_cli_offline_and_missing_dataset_exit_2_with_one_line(dead_url, tmp_path, capsys):
    assert cli.main(["download", "fashion-mnist", "--dir", str(tmp_path), "--base-url", dead_url, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurohebb: error: could not download train-images-idx3-ubyte.gz") and err.count("\n") == 1
    assert cli.main(["download", "cifar10", "--dir", str(tmp_path), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurohebb: error: cifar10 not found") and err.count("\n") == 1
    assert f"neurohebb download cifar10 --dir {tmp_path}" in err


def test_cli_digits(capsys):
    assert cli.main(["download", "digits"]) == 0
    assert "nothing to download" in capsys.readouterr().out
