"""ImageNet folders: class-folder and devkit (flat) validation layouts, transforms, worker
determinism, and a whole streamed run on a tiny generated folder of JPEGs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from neurohebb.config import config_from_dict, resolve_config  # noqa: E402
from neurohebb.data import imagefolder, load_dataset  # noqa: E402
from neurohebb.engine import train  # noqa: E402
from neurohebb.errors import DataError  # noqa: E402

WNIDS = ["n01440764", "n01443537", "n01484850"]  # sorted: labels 0, 1, 2
SIZES = [(50, 40), (37, 90), (120, 64), (64, 64)]


def _jpeg(path: Path, size: tuple[int, int], value: int) -> None:
    rng = np.random.default_rng(value)
    arr = np.clip(rng.normal(value, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=95)


def make_imagenet(root: Path, flat_val: bool = False) -> Path:
    for c, wnid in enumerate(WNIDS):
        (root / "train" / wnid).mkdir(parents=True)
        for k, size in enumerate(SIZES):
            _jpeg(root / "train" / wnid / f"{wnid}_{k}.JPEG", size, 60 * c + 20 + k)
    val_truth = [2, 0, 1, 1, 2, 0]  # class per validation image
    if flat_val:
        from scipy.io import savemat

        (root / "val").mkdir()
        # ILSVRC2012_IDs are not in wnid order: id 1 -> WNIDS[2], id 2 -> WNIDS[0], id 3 -> WNIDS[1].
        id_of = {2: 1, 0: 2, 1: 3}
        for i, c in enumerate(val_truth, 1):
            _jpeg(root / "val" / f"ILSVRC2012_val_{i:08d}.JPEG", (48, 56), 60 * c + 30)
        data = root / "ILSVRC2012_devkit_t12" / "data"
        data.mkdir(parents=True)
        (data / imagefolder.GROUND_TRUTH).write_text("\n".join(str(id_of[c]) for c in val_truth) + "\n")
        dt = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("num_children", "O")]
        synsets = np.zeros(4, dtype=dt)
        synsets[0] = (1, WNIDS[2], "c", 0)
        synsets[1] = (2, WNIDS[0], "a", 0)
        synsets[2] = (3, WNIDS[1], "b", 0)
        synsets[3] = (1001, "n00000001", "an inner node", 2)
        savemat(str(data / imagefolder.META), {"synsets": synsets})
    else:
        for i, c in enumerate(val_truth):
            folder = root / "val" / WNIDS[c]
            folder.mkdir(parents=True, exist_ok=True)
            _jpeg(folder / f"ILSVRC2012_val_{i + 1:08d}.JPEG", (48, 56), 60 * c + 30)
    return root


def test_class_folder_layout(tmp_path):
    data = load_dataset("imagenet", make_imagenet(tmp_path / "imagenet"))
    assert data.streaming and data.classes == tuple(WNIDS) and data.num_classes == 3
    assert len(data.train) == 12 and data.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert sorted(data.test.labels.tolist()) == [0, 0, 1, 1, 2, 2]
    x, y = next(data.batches("test", 4, augment=False, seed=0))
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 160, 160) and y.dtype == torch.int64


def test_flat_val_with_devkit_labels_matches_class_folders(tmp_path):
    flat = load_dataset("imagenet", make_imagenet(tmp_path / "a", flat_val=True))
    folders = load_dataset("imagenet", make_imagenet(tmp_path / "b"))
    # Flat: file-number order; labels come from the ground truth through meta.mat's wnids.
    assert flat.test.labels.tolist() == [2, 0, 1, 1, 2, 0]
    assert sorted(flat.test.labels.tolist()) == sorted(folders.test.labels.tolist())


def test_flat_val_without_devkit_says_what_to_add(tmp_path):
    root = make_imagenet(tmp_path / "imagenet", flat_val=True)
    (root / "ILSVRC2012_devkit_t12" / "data" / imagefolder.META).unlink()
    with pytest.raises(DataError, match="put the devkit's ILSVRC2012_validation_ground_truth.txt and meta.mat"):
        load_dataset("imagenet", root)


def test_missing_imagenet_points_at_data_dir(tmp_path):
    with pytest.raises(DataError, match="imagenet not found .*pass --data-dir DIR"):
        load_dataset("imagenet", tmp_path)


def test_eval_transform_resizes_short_side_then_centre_crops():
    img = Image.fromarray(np.zeros((100, 300, 3), np.uint8))  # 300 wide, 100 high
    out = imagefolder.resize_center_crop(img, 160)
    assert out.size == (160, 160)
    # A marker at the image centre survives the centre crop at the centre.
    arr = np.zeros((100, 300, 3), np.uint8)
    arr[45:55, 145:155] = 255
    out = np.asarray(imagefolder.resize_center_crop(Image.fromarray(arr), 160))
    assert out[80, 80].min() > 200 and out[5, 5].max() == 0


def test_random_resized_crop_stays_inside_and_is_seeded():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (70, 90, 3), dtype=np.uint8))
    a = np.asarray(imagefolder.random_resized_crop(img, 32, np.random.default_rng([5, 1])))
    b = np.asarray(imagefolder.random_resized_crop(img, 32, np.random.default_rng([5, 1])))
    c = np.asarray(imagefolder.random_resized_crop(img, 32, np.random.default_rng([6, 1])))
    assert a.shape == (32, 32, 3) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_augmented_batches_do_not_depend_on_worker_count(tmp_path):
    data = load_dataset("imagenet", make_imagenet(tmp_path / "imagenet"))
    order = np.array([5, 0, 11, 3, 7])
    one = [x for x, _ in data.batches("train", 2, augment=True, seed=9, order=order, workers=0)]
    two = [x for x, _ in data.batches("train", 2, augment=True, seed=9, order=order, workers=2, prefetch=1)]
    assert [x.shape[0] for x in one] == [2, 2, 1]
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    other = [x for x, _ in data.batches("train", 2, augment=True, seed=10, order=order)]
    assert not torch.equal(one[0], other[0])


@pytest.mark.parametrize("workers", [0, 1])
def test_corrupt_jpeg_is_a_one_line_error_naming_the_file(tmp_path, workers):
    root = make_imagenet(tmp_path / "imagenet")
    bad = root / "train" / WNIDS[0] / f"{WNIDS[0]}_0.JPEG"
    bad.write_bytes(b"not a jpeg")
    data = load_dataset("imagenet", root)
    with pytest.raises(DataError, match=f"^cannot decode {bad} .*delete or replace the file$") as info:
        list(data.batches("train", 4, augment=False, seed=0, workers=workers))
    assert "\n" not in str(info.value)


def test_imagenet_presets_follow_the_authors_network():
    cfg = resolve_config("imagenet")
    assert [l.out_channels for l in cfg.layers] == [48, 192, 768, 3072, 12288]
    assert all(l.lr_power == 0.75 for l in cfg.layers)
    assert cfg.data.hebbian_fraction == 0.1 and cfg.hebbian.batch_size == 10 and cfg.readout.epochs == 200


def test_streamed_run_on_a_tiny_folder(tmp_path):
    data = load_dataset("imagenet", make_imagenet(tmp_path / "imagenet"))
    cfg = config_from_dict({
        "seed": 0, "device": "cpu",
        "data": {"dataset": "imagenet", "hebbian_fraction": 0.5, "workers": 0},
        "hebbian": {"epochs": 1, "batch_size": 3},
        "readout": {"epochs": 2, "batch_size": 4, "augment": "crop-flip"},
        "layers": [{"kind": "conv", "out_channels": 4, "kernel_size": 5, "padding": 2, "lr": 0.05, "lr_power": 0.75,
                    "pool": "max", "pool_kernel": 16, "pool_stride": 16}],
    })
    net, metrics = train(cfg, tmp_path / "run", progress=False, dataset=data)
    assert metrics["n_hebbian_per_epoch"] == 6 and metrics["n_train"] == 12 and metrics["n_test"] == 6
    assert metrics["feature_size"] == 4 * 10 * 10 and 0 <= metrics["test_accuracy"] <= 100
    net2, metrics2 = train(cfg, progress=False, dataset=data)
    assert torch.equal(net.blocks[0].layer.weight, net2.blocks[0].layer.weight)
    assert metrics2["test_accuracy"] == metrics["test_accuracy"]
    # `neurohebb eval` streams the test split from disk too, and agrees with the run's own number.
    from neurohebb import cli

    assert cli.main(["eval", str(tmp_path / "run"), "--data-dir", str(tmp_path / "imagenet"), "--device", "cpu"]) == 0
    evaluated = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert evaluated["test_accuracy"] == metrics["test_accuracy"] and evaluated["n_test"] == 6
