"""STL-10: the canonical binary format (column-major images, labels 1..10), download with
archive-member checksums, the unlabelled Hebbian split and the crop-flip readout."""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from neurohebb import cli
from neurohebb.config import config_from_dict, preset_names, resolve_config
from neurohebb.data import download as dl
from neurohebb.data import load_dataset, stl10
from neurohebb.engine import train
from neurohebb.errors import DataError
from neurohebb.streaming import crop_flip, needs_streaming

SIDE, PLANE = 96, 96 * 96


def stored_bytes(images: np.ndarray) -> bytes:
    """[N,3,H,W] -> the file layout: per channel, column-major (column index outermost)."""
    return np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tobytes()


def write_stl10(folder: Path, n_train=6, n_test=4, n_unlabeled=9, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        x = rng.integers(0, 256, (n, 3, SIDE, SIDE), dtype=np.uint8)
        (folder / f"{split}_X.bin").write_bytes(stored_bytes(x))
        out[split] = x
        if split != "unlabeled":
            y = rng.integers(1, 11, n).astype(np.uint8)
            (folder / f"{split}_y.bin").write_bytes(y.tobytes())
            out[f"{split}_y"] = y
    return out


def test_known_pixel_is_transposed(tmp_path):
    """A byte written at the stored (column-major) offset of (channel 1, row 5, column 70)
    appears at [1, 5, 70] after reading; its transpose position stays empty."""
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    raw = np.zeros(2 * 3 * PLANE, dtype=np.uint8)
    image, channel, row, col = 1, 1, 5, 70
    raw[image * 3 * PLANE + channel * PLANE + col * SIDE + row] = 200
    (folder / "train_X.bin").write_bytes(raw.tobytes())
    (folder / "train_y.bin").write_bytes(bytes([1, 10]))
    (folder / "test_X.bin").write_bytes(raw.tobytes())
    (folder / "test_y.bin").write_bytes(bytes([3, 4]))
    data = load_dataset("stl10", tmp_path)
    assert data.x_train.shape == (2, 3, 96, 96) and data.x_train.dtype == np.uint8
    assert data.x_train[image, channel, row, col] == 200
    assert data.x_train[image, channel, col, row] == 0
    assert int(data.x_train.sum()) == 200
    assert data.y_train.tolist() == [0, 9] and data.y_test.tolist() == [2, 3]
    assert data.x_unlabeled is None


def test_load_round_trip_and_unlabeled_memmap(tmp_path):
    arrays = write_stl10(tmp_path / "stl10" / "stl10_binary")
    data = load_dataset("STL-10", tmp_path)
    np.testing.assert_array_equal(data.x_train, arrays["train"])
    np.testing.assert_array_equal(data.x_test, arrays["test"])
    np.testing.assert_array_equal(data.y_train, arrays["train_y"].astype(np.int64) - 1)
    assert isinstance(data.x_unlabeled.base, np.memmap) or isinstance(data.x_unlabeled, np.memmap)
    np.testing.assert_array_equal(np.asarray(data.x_unlabeled), arrays["unlabeled"])
    sub = load_dataset("stl10", tmp_path, train_subset=3, test_subset=2)
    assert len(sub.y_train) == 3 and len(sub.y_test) == 2


@pytest.mark.parametrize("labels, message", [(bytes([0, 1, 2, 3, 4, 5]), "expected 1..10"), (bytes([1, 2, 3]), "6 images but")])
def test_bad_labels_are_one_line_errors(tmp_path, labels, message):
    write_stl10(tmp_path)
    (tmp_path / "train_y.bin").write_bytes(labels)
    with pytest.raises(DataError, match=message):
        load_dataset("stl10", tmp_path)


def test_truncated_images_and_missing_files(tmp_path):
    write_stl10(tmp_path)
    with open(tmp_path / "test_X.bin", "ab") as fh:
        fh.write(b"\0" * 10)
    with pytest.raises(DataError, match="not a whole number of 3x96x96 images"):
        load_dataset("stl10", tmp_path)
    (tmp_path / "test_X.bin").unlink()
    with pytest.raises(DataError, match="lacks test_X.bin; run `neurohebb download stl10"):
        load_dataset("stl10", tmp_path)
    with pytest.raises(DataError, match="stl10 not found .*neurohebb download stl10"):
        load_dataset("stl10", tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# Download


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture()
def served_stl10(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_stl10(src, n_train=3, n_test=2, n_unlabeled=2, seed=3)
    members = {f"stl10_binary/{p.name}": p.read_bytes() for p in sorted(src.iterdir())}
    members["stl10_binary/class_names.txt"] = b"airplane\n"
    www = tmp_path / "www"
    www.mkdir()
    archive = _tar_gz(members)
    (www / "stl10_binary.tar.gz").write_bytes(archive)
    real = dl.SOURCES["stl10"]
    files = (dl.Resource("stl10_binary.tar.gz", hashlib.md5(archive).hexdigest()),)
    extract = tuple(dl.Resource(r.filename, hashlib.md5(members[r.filename]).hexdigest()) for r in real.extract)
    monkeypatch.setitem(dl.SOURCES, "stl10", dl.Source(("http://unused.invalid/",), files, extract))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_address[1]}/", "src": src, "www": www, "members": members}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_registry_has_torchvisions_stl10_checksums():
    source = dl.SOURCES["stl10"]
    assert source.files == (dl.Resource("stl10_binary.tar.gz", "91f7769df0f17e558f3565bffb0c7dfb"),)
    assert dict((r.filename, r.md5) for r in source.extract)["stl10_binary/unlabeled_X.bin"] == "5242ba1fed5e4be9e1e742405eb56ca4"


def test_download_extracts_only_listed_members_and_loads(tmp_path, served_stl10):
    dest = tmp_path / "data"
    assert cli.main(["download", "stl10", "--dir", str(dest), "--base-url", served_stl10["url"], "--no-progress"]) == 0
    folder = dest / "stl10" / "stl10_binary"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin"])
    for name in ("train_X.bin", "unlabeled_X.bin"):
        assert (folder / name).read_bytes() == (served_stl10["src"] / name).read_bytes()
    assert len(load_dataset("stl10", dest).y_train) == 3
    # Already present and valid: nothing is fetched (the server is gone).
    (served_stl10["www"] / "stl10_binary.tar.gz").unlink()
    (dest / "stl10" / "stl10_binary.tar.gz").unlink()
    paths = dl.download_dataset("stl10", dest / "stl10", base_url=served_stl10["url"], progress=False)
    assert [p.name for p in paths][-1] == "unlabeled_X.bin"


def test_download_rejects_a_tampered_member(tmp_path, served_stl10, monkeypatch):
    source = dl.SOURCES["stl10"]
    bad = tuple(dl.Resource(r.filename, "0" * 32) if r.filename.endswith("test_y.bin") else r for r in source.extract)
    monkeypatch.setitem(dl.SOURCES, "stl10", dl.Source(source.mirrors, source.files, bad))
    with pytest.raises(DataError, match="test_y.bin from .* has md5 .* expected 0{32}"):
        dl.download_dataset("stl10", tmp_path, base_url=served_stl10["url"], progress=False)
    assert not (tmp_path / "stl10_binary" / "test_y.bin").exists()
    assert not list((tmp_path / "stl10_binary").glob("*.part"))


def test_imagenet_has_no_download(tmp_path):
    with pytest.raises(DataError, match="imagenet has no public download.*--data-dir"):
        dl.download_dataset("imagenet", tmp_path)


# ---------------------------------------------------------------------------------------------
# Crop-flip augmentation and the recipe


def test_crop_flip_windows_of_the_reflect_padded_image():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(40 * 2 * 6 * 7, dtype=torch.float32).reshape(40, 2, 6, 7)
    out = crop_flip(x, 2, gen)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    flipped = 0
    for i in range(40):
        windows = [padded[i, :, r:r + 6, c:c + 7] for r in range(5) for c in range(5)]
        plain = any(torch.equal(out[i], w) for w in windows)
        mirrored = any(torch.equal(out[i], w.flip(2)) for w in windows)
        assert plain or mirrored
        flipped += mirrored and not plain
    assert 5 < flipped < 35  # both orientations occur
    assert torch.equal(crop_flip(x, 2, torch.Generator().manual_seed(0)), out)  # seeded


def test_existing_presets_keep_the_cached_feature_pipeline():
    for name in ("digits", "mnist", "mnist-mlp", "cifar10", "cifar10-paper"):
        assert not needs_streaming(resolve_config(name), dataset=None), name
    stl = resolve_config("stl10")
    assert stl.data.hebbian_data == "unlabeled" and stl.readout.augment == "crop-flip" and stl.hebbian.batch_size == 32
    assert [l.out_channels for l in stl.layers] == [96, 384, 1536, 6144]


def test_paper_variants_differ_only_in_the_greedy_mode():
    for base in ("cifar10", "mnist", "stl10", "imagenet"):
        assert f"{base}-paper" in preset_names()
        a, b = resolve_config(base).to_dict(), resolve_config(f"{base}-paper").to_dict()
        assert b["hebbian"]["mode"] == "greedy" and a["hebbian"]["mode"] == "simultaneous"
        b["hebbian"]["mode"] = "simultaneous"
        a.pop("preset"), b.pop("preset")
        assert a == b, base


def _tiny_stl_config(**data) -> dict:
    return {
        "seed": 1, "device": "cpu",
        "data": {"dataset": "stl10", **data},
        "hebbian": {"epochs": 1, "batch_size": 4},
        "readout": {"epochs": 3, "batch_size": 4, "augment": "crop-flip"},
        "layers": [{"kind": "conv", "out_channels": 6, "kernel_size": 5, "padding": 2, "lr": 0.05,
                    "pool": "max", "pool_kernel": 8, "pool_stride": 8}],
    }


def test_stl10_recipe_runs_on_the_unlabeled_split(tmp_path, monkeypatch):
    write_stl10(tmp_path, n_train=8, n_test=4, n_unlabeled=12)
    data = load_dataset("stl10", tmp_path)
    calls = []
    from neurohebb import streaming

    real = streaming.train_readout_streamed

    def spy(net, epochs, *args, **kwargs):
        def counted():
            for xb, yb in epochs():
                calls.append(xb.clone())
                yield xb, yb
        return real(net, counted, *args, **kwargs)

    monkeypatch.setattr(streaming, "train_readout_streamed", spy)
    net_u, m_u = train(config_from_dict(_tiny_stl_config(hebbian_data="unlabeled")), progress=False, dataset=data)
    assert m_u["n_hebbian_per_epoch"] == 12 and m_u["hebbian_data"] == "unlabeled" and m_u["readout_augment"] == "crop-flip"
    assert m_u["n_train"] == 8 and m_u["n_test"] == 4 and 0 <= m_u["test_accuracy"] <= 100
    assert len(calls) == 3 * 2  # features recomputed for every batch of every readout epoch
    assert not torch.equal(calls[0].sort(0).values, calls[2].sort(0).values)  # a new crop each epoch
    net_t, m_t = train(config_from_dict(_tiny_stl_config(hebbian_data="train")), progress=False, dataset=data)
    assert m_t["n_hebbian_per_epoch"] == 8
    assert not torch.equal(net_u.blocks[0].layer.weight, net_t.blocks[0].layer.weight)
    net_again, m_again = train(config_from_dict(_tiny_stl_config(hebbian_data="unlabeled")), progress=False, dataset=data)
    assert torch.equal(net_again.blocks[0].layer.weight, net_u.blocks[0].layer.weight)
    assert torch.equal(net_again.readout.weight, net_u.readout.weight)


def test_unlabeled_split_missing_is_a_config_error(tmp_path):
    from neurohebb.errors import ConfigError

    write_stl10(tmp_path, n_unlabeled=0)
    (tmp_path / "unlabeled_X.bin").unlink()
    data = load_dataset("stl10", tmp_path)
    with pytest.raises(ConfigError, match="has no unlabelled images"):
        train(config_from_dict(_tiny_stl_config(hebbian_data="unlabeled")), progress=False, dataset=data)
