"""Dataset loaders: every on-disk format returns exactly the arrays written, and bad files fail clearly."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import pickletools
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from neurohebb.data import Dataset, default_data_dir, load_dataset, to_float
from neurohebb.data import cifar, digits, paths
from neurohebb.data.idx import parse_idx
from neurohebb.errors import DataError

RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------- writers for the canonical formats
def idx_bytes(arr: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C}
    header = bytes([0, 0, codes[arr.dtype], arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.tobytes()


def write_idx_set(folder: Path, n_train=5, n_test=3, compress=True, hw=(28, 28)) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = RNG.integers(0, 256, size=(n, *hw), dtype=np.uint8)
        y = RNG.integers(0, 10, size=n).astype(np.uint8)
        for stem, arr in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
            data = idx_bytes(arr)
            if compress:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / stem).write_bytes(data)
        arrays[prefix] = (x, y)
    return arrays


class Py2Pickler(pickle._Pickler):
    """Writes strings as Python 2 `str` opcodes, as cPickle did for the real CIFAR-10 batches."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def cifar_batch(n: int) -> tuple[bytes, np.ndarray, list[int]]:
    data = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in RNG.integers(0, 10, size=n)]
    entry = {b"batch_label": b"testing batch", b"labels": labels, b"data": data, b"filenames": [b"x.png"] * n}
    return py2_pickle(entry), data, labels


def write_cifar_python(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": [], "test": []}
    for name, n in [(f"data_batch_{i}", 2) for i in range(1, 6)] + [("test_batch", 3)]:
        raw, data, labels = cifar_batch(n)
        (folder / name).write_bytes(raw)
        parts["test" if name == "test_batch" else "train"].append((data, labels))
    return {k: (np.concatenate([d for d, _ in v]), np.concatenate([l for _, l in v])) for k, v in parts.items()}


def write_cifar_binary(folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    out = {"train": [], "test": []}
    for name, n in [(f"data_batch_{i}", 2) for i in range(1, 6)] + [("test_batch", 3)]:
        labels = RNG.integers(0, 10, size=n).astype(np.uint8)
        pixels = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        (folder / f"{name}.bin").write_bytes(np.concatenate([labels[:, None], pixels], axis=1).tobytes())
        out["test" if name == "test_batch" else "train"].append((pixels, labels))
    return {k: (np.concatenate([p for p, _ in v]), np.concatenate([l for _, l in v])) for k, v in out.items()}


def tar_folder(src: Path, archive: Path, arcdir: str, reverse=False) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(src.iterdir(), reverse=reverse):
            tar.add(path, arcname=f"{arcdir}/{path.name}")


def write_shards(folder: Path, dataset: str, splits: dict, per_shard: int) -> dict:
    """Shards in the layout of ../shared/data; the manifest lists them in reverse order on purpose."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for split, (x, y) in splits.items():
        for k, start in enumerate(range(0, len(y), per_shard)):
            xs, ys = x[start : start + per_shard], y[start : start + per_shard]
            name = f"{split}-{k:02d}.npz"
            np.savez_compressed(folder / name, x=xs, y=ys)
            entries.append({
                "file": name,
                "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
                "split": split,
                "index_range": [start, start + len(ys)],
                "arrays": {"x": {"shape": list(xs.shape), "dtype": str(xs.dtype)}, "y": {"shape": list(ys.shape), "dtype": str(ys.dtype)}},
            })
    manifest = {"dataset": dataset, "files": entries[::-1]}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    return manifest


# ---------------------------------------------------------------- IDX
def test_parse_idx_decodes_header_and_big_endian_payload():
    # 2x3 int16, big-endian: header 00 00 0B 02, dims 2 and 3, then six 2-byte values.
    data = bytes([0, 0, 0x0B, 2]) + struct.pack(">II", 2, 3) + struct.pack(">6h", 1, -2, 300, 4, 5, -32768)
    arr = parse_idx(data, "t")
    assert arr.shape == (2, 3)
    assert arr.tolist() == [[1, -2, 300], [4, 5, -32768]]


@pytest.mark.parametrize("compress", [True, False])
def test_idx_folder_loads_exact_arrays(tmp_path, compress):
    written = write_idx_set(tmp_path / "mnist", compress=compress)
    ds = load_dataset("mnist", tmp_path)  # parent folder holding mnist/
    assert ds.name == "mnist" and ds.source == str(tmp_path / "mnist")
    assert ds.x_train.shape == (5, 1, 28, 28) and ds.x_train.dtype == np.uint8
    assert ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train[:, 0], written["train"][0])
    np.testing.assert_array_equal(ds.y_train, written["train"][1])
    np.testing.assert_array_equal(ds.x_test[:, 0], written["t10k"][0])
    np.testing.assert_array_equal(ds.y_test, written["t10k"][1])


def test_fashion_alias_and_dataset_folder_itself(tmp_path):
    written = write_idx_set(tmp_path / "fashion_mnist")
    a = load_dataset("fashion-mnist", tmp_path)
    b = load_dataset("fashion_mnist", tmp_path / "fashion_mnist")  # the dataset's own folder
    assert a.name == b.name == "fashion_mnist"
    np.testing.assert_array_equal(a.y_test, written["t10k"][1])
    np.testing.assert_array_equal(a.x_train, b.x_train)


def test_torchvision_raw_layout(tmp_path):
    written = write_idx_set(tmp_path / "MNIST" / "raw", compress=False)
    ds = load_dataset("mnist", tmp_path)
    np.testing.assert_array_equal(ds.y_train, written["train"][1])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"<htm" + b[4:], "not an IDX file"),
        (lambda b: b[:-10], "truncated"),
        (lambda b: b + b"\0", "longer than its header"),
        (lambda b: b[:6], "ends after"),
    ],
)
def test_corrupt_idx_raises_dataerror_naming_the_file(tmp_path, mutate, message):
    write_idx_set(tmp_path, compress=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(DataError, match=message) as info:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(info.value) and "download it again" in str(info.value)


def test_damaged_gzip_and_wrong_image_size(tmp_path):
    write_idx_set(tmp_path / "a")
    path = tmp_path / "a" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-8])  # drop the gzip trailer
    with pytest.raises(DataError, match="damaged gzip"):
        load_dataset("mnist", tmp_path / "a")
    write_idx_set(tmp_path / "b", hw=(27, 28))
    with pytest.raises(DataError, match=r"expected uint8 images \[N,28,28\]"):
        load_dataset("mnist", tmp_path / "b")


def test_idx_label_count_and_range_are_checked(tmp_path):
    write_idx_set(tmp_path, compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([0, 1], dtype=np.uint8)))
    with pytest.raises(DataError, match="3 images but .* 2 labels"):
        load_dataset("mnist", tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([0, 1, 10], dtype=np.uint8)))
    with pytest.raises(DataError, match=r"labels span 0\.\.10, expected 0\.\.9"):
        load_dataset("mnist", tmp_path)


def test_incomplete_idx_folder_names_the_missing_file(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*neurohebb download mnist"):
        load_dataset("mnist", tmp_path)


# ---------------------------------------------------------------- CIFAR-10
def _assert_cifar(ds: Dataset, written: dict) -> None:
    for split in ("train", "test"):
        pixels, labels = written[split]
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        assert x.shape == (len(labels), 3, 32, 32) and x.dtype == np.uint8
        np.testing.assert_array_equal(y, labels)
        # Channel-major rows: the first 1024 bytes are the red plane, row by row.
        np.testing.assert_array_equal(x[:, 0], pixels[:, :1024].reshape(-1, 32, 32))
        np.testing.assert_array_equal(x[:, 2, 31, 31], pixels[:, 3071])


def test_cifar_python_folder_and_archive(tmp_path):
    written = write_cifar_python(tmp_path / "src" / "cifar-10-batches-py")
    ds = load_dataset("cifar10", tmp_path / "src")
    assert ds.x_train.shape[0] == 10 and ds.x_test.shape[0] == 3
    _assert_cifar(ds, written)
    (tmp_path / "cifar10").mkdir()
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    tar_folder(tmp_path / "src" / "cifar-10-batches-py", archive, "cifar-10-batches-py", reverse=True)
    ds_tar = load_dataset("cifar10", tmp_path)
    assert ds_tar.source.endswith("cifar-10-python.tar.gz")
    _assert_cifar(ds_tar, written)


def test_cifar_binary_folder_and_archive(tmp_path):
    written = write_cifar_binary(tmp_path / "a" / "cifar-10-batches-bin")
    _assert_cifar(load_dataset("cifar10", tmp_path / "a"), written)
    (tmp_path / "b").mkdir()
    tar_folder(tmp_path / "a" / "cifar-10-batches-bin", tmp_path / "b" / "cifar-10-binary.tar.gz", "cifar-10-batches-bin")
    _assert_cifar(load_dataset("cifar10", tmp_path / "b"), written)


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_calls_os_system_is_refused_without_running(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_python(folder)
    marker = tmp_path / "pwned"
    payload = py2_pickle({b"data": _Exploit(marker), b"labels": []})
    # The payload really asks for os.system (plain pickle.loads would run it).
    assert any(op.name == "GLOBAL" and arg.endswith(" system") for op, arg, _ in pickletools.genops(payload))
    (folder / "data_batch_3").write_bytes(payload)
    with pytest.raises(DataError, match=r"asks to load (posix|os|nt)\.system.*refusing") as info:
        load_dataset("cifar10", tmp_path)
    assert "data_batch_3" in str(info.value)
    assert not marker.exists()
    # The same guard holds for anything outside numpy's array reconstruction.
    with pytest.raises(DataError, match=r"(__builtin__|builtins)\.eval.*refusing"):
        cifar.restricted_unpickle(py2_pickle({b"data": _Eval()}), "x")


class _Eval:
    def __reduce__(self):
        return (eval, ("1+1",))


@pytest.mark.parametrize(
    "entry, message",
    [
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, r"'data' must be uint8 \[n,3072\]"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 images but 1 labels"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "expected 'data' and 'labels'"),
        ([1, 2], "expected a dict"),
    ],
)
def test_malformed_cifar_batches(entry, message):
    raw = py2_pickle(entry)
    with pytest.raises(DataError, match=message):
        cifar.parse_python_batch(raw, "batch")
    with pytest.raises(DataError, match="not a readable CIFAR-10 batch"):
        cifar.parse_python_batch(raw[:-5], "batch")


def test_truncated_cifar_binary_and_incomplete_archive(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    write_cifar_binary(folder)
    (folder / "test_batch.bin").write_bytes((folder / "test_batch.bin").read_bytes()[:-1])
    with pytest.raises(DataError, match="not a whole number of 3073-byte"):
        load_dataset("cifar10", tmp_path)
    write_cifar_python(tmp_path / "src")
    (tmp_path / "src" / "test_batch").unlink()
    (tmp_path / "c").mkdir()
    tar_folder(tmp_path / "src", tmp_path / "c" / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    with pytest.raises(DataError, match="lacks cifar-10-batches-py/test_batch"):
        load_dataset("cifar10", tmp_path / "c")
    (tmp_path / "c" / "cifar-10-python.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(DataError, match="not a readable tar archive"):
        load_dataset("cifar10", tmp_path / "c")


# ---------------------------------------------------------------- NumPy shards
def _mnist_like(n_train=7, n_test=4):
    return {
        "train": (RNG.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), RNG.integers(0, 10, n_train).astype(np.uint8)),
        "test": (RNG.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), RNG.integers(0, 10, n_test).astype(np.uint8)),
    }


def test_shards_concatenate_in_index_order(tmp_path):
    splits = _mnist_like()
    write_shards(tmp_path / "mnist", "MNIST", splits, per_shard=3)  # train: 3 shards, listed in reverse
    ds = load_dataset("mnist", tmp_path)
    np.testing.assert_array_equal(ds.x_train[:, 0], splits["train"][0])
    np.testing.assert_array_equal(ds.y_train, splits["train"][1].astype(np.int64))
    np.testing.assert_array_equal(ds.x_test[:, 0], splits["test"][0])
    assert ds.y_train.dtype == np.int64 and ds.x_train.shape == (7, 1, 28, 28)


def test_cifar_shards_keep_channel_first_layout(tmp_path):
    x = RNG.integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    y = RNG.integers(0, 10, 5).astype(np.uint8)
    write_shards(tmp_path, "CIFAR-10", {"train": (x, y), "test": (x[:2], y[:2])}, per_shard=2)
    ds = load_dataset("cifar10", tmp_path)
    np.testing.assert_array_equal(ds.x_train, x)


def test_subset_reads_only_the_shards_it_needs(tmp_path):
    splits = _mnist_like()
    write_shards(tmp_path, "MNIST", splits, per_shard=3)
    (tmp_path / "train-02.npz").write_bytes(b"corrupt")  # samples 6..7 only
    ds = load_dataset("mnist", tmp_path, train_subset=6, test_subset=2)
    np.testing.assert_array_equal(ds.x_train[:, 0], splits["train"][0][:6])
    np.testing.assert_array_equal(ds.y_test, splits["test"][1][:2])
    with pytest.raises(DataError, match="train-02.npz fails its checksum"):
        load_dataset("mnist", tmp_path)


def _rewrite_manifest(folder: Path, edit) -> None:
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    edit(manifest)
    (folder / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["files"][0].update(sha256="0" * 64), "fails its checksum"),
        (lambda m: m["files"][0]["arrays"]["x"].update(shape=[9, 28, 28]), "manifest declares"),
        (lambda m: m.update(dataset="Fashion-MNIST"), "describes Fashion-MNIST, not mnist"),
        (lambda m: m["files"][-1].update(index_range=[1, 3]), "do not tile the index range"),
        (lambda m: m["files"].pop(), "missing|do not tile"),
        (lambda m: m.pop("files"), "no 'files' list"),
    ],
)
def test_bad_shard_folders(tmp_path, edit, message):
    write_shards(tmp_path, "MNIST", _mnist_like(), per_shard=3)
    _rewrite_manifest(tmp_path, edit)
    with pytest.raises(DataError, match=message):
        load_dataset("mnist", tmp_path)


def test_shard_with_wrong_image_shape_for_dataset(tmp_path):
    write_shards(tmp_path, "CIFAR-10", _mnist_like(), per_shard=10)  # 28x28 images under a CIFAR name
    with pytest.raises(DataError, match=r"expected uint8 \[7,3,32,32\] for cifar10"):
        load_dataset("cifar10", tmp_path)


# ---------------------------------------------------------------- digits, subsets, names, paths
def test_digits_scaling_is_round_half_up_of_v_times_255_over_16():
    assert digits.scale_to_uint8(np.array([0, 1, 8, 15, 16])).tolist() == [0, 16, 128, 239, 255]


def test_digits_split_is_deterministic_and_stratified():
    from sklearn.datasets import load_digits

    a, b = load_dataset("digits"), load_dataset("digits")
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.x_train.shape == (1352, 1, 8, 8) and a.x_test.shape == (445, 1, 8, 8)
    bunch = load_digits()
    counts = np.bincount(bunch.target)
    np.testing.assert_array_equal(np.bincount(a.y_test, minlength=10), counts // 4)
    # Test samples are exactly the 4th, 8th, ... sample of each class in the bundled order.
    mask = np.zeros(len(bunch.target), bool)
    for c in range(10):
        mask[np.flatnonzero(bunch.target == c)[3::4]] = True
    np.testing.assert_array_equal(a.x_test.reshape(-1, 64), digits.scale_to_uint8(bunch.data[mask]))
    np.testing.assert_array_equal(a.y_train, bunch.target[~mask])


def test_subsets_take_the_first_samples_and_reject_bad_values():
    full, sub = load_dataset("digits"), load_dataset("digits", train_subset=10, test_subset=5)
    np.testing.assert_array_equal(sub.x_train, full.x_train[:10])
    np.testing.assert_array_equal(sub.y_test, full.y_test[:5])
    for bad in (0, -1, True, 2.5):
        with pytest.raises(DataError, match="positive integer"):
            load_dataset("digits", train_subset=bad)
    with pytest.raises(DataError, match="test_subset=446 exceeds the 445 test samples"):
        load_dataset("digits", test_subset=446)


def test_unknown_and_missing_datasets(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'svhn'; choose one of digits, mnist"):
        load_dataset("svhn")
    with pytest.raises(DataError, match=rf"cifar10 not found .*run `neurohebb download cifar10 --dir {tmp_path}`") as info:
        load_dataset("cifar10", tmp_path)
    assert "\n" not in str(info.value)


def test_default_data_dir_prefers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ENV_DATA_DIR, str(tmp_path))
    assert default_data_dir() == tmp_path
    write_idx_set(tmp_path / "mnist")
    assert load_dataset("mnist").source == str(tmp_path / "mnist")
    monkeypatch.delenv(paths.ENV_DATA_DIR)
    expected = paths.SHARED_DATA if paths.SHARED_DATA.is_dir() else paths.CACHE_DIR.expanduser()
    assert default_data_dir() == expected


def test_dataset_record_validates_its_arrays():
    x = np.zeros((2, 1, 8, 8), np.uint8)
    y = np.zeros(2, np.int64)
    with pytest.raises(DataError, match="labels must be an int64 array"):
        Dataset("t", x, y.astype(np.int32), x, y, source="mem")
    with pytest.raises(DataError, match="images must be a uint8 array"):
        Dataset("t", x.astype(np.float32), y, x, y, source="mem")
    with pytest.raises(DataError, match="train images are"):
        Dataset("t", x, y, np.zeros((2, 1, 4, 4), np.uint8), y, source="mem")
    assert Dataset("t", x, y, x, y, source="mem").input_shape == (1, 8, 8)


def test_to_float_divides_uint8_by_255():
    x = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    expected = torch.tensor([[0.0, 1 / 255, 128 / 255, 1.0]], dtype=torch.float32)
    for value in (x, torch.from_numpy(x.copy())):
        out = to_float(value)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    with pytest.raises(DataError, match="expects uint8"):
        to_float(x.astype(np.float32))
    with pytest.raises(DataError, match="expects uint8"):
        to_float(torch.zeros(2))


# ---------------------------------------------------------------- the shared copies
def test_shared_mnist_matches_canonical_counts(shared_data_dir):
    ds = load_dataset("mnist", shared_data_dir)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(ds.y_train)[1] == 6742
    assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(float(ds.x_train.mean()) / 255 - 0.1307) < 1e-3  # the well-known MNIST mean


def test_shared_cifar10_subset(shared_data_dir):
    ds = load_dataset("cifar10", shared_data_dir, train_subset=100, test_subset=10)
    assert ds.x_train.shape == (100, 3, 32, 32)
    # First labels of the canonical test_batch.
    assert ds.y_test.tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
