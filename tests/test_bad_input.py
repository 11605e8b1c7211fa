"""The bad-input matrix: what a careless or hostile user can type, and what must happen.

Every case asserts the exit code (2), a one-line message that names the problem and the fix, and
that nothing the user had was lost (files compared byte for byte). File-system failures that
need root or a mount (a full disk, a read-only mount) come from a fake file-system layer: the
tests run as root, and root ignores permission bits, so `chmod` would prove nothing.
"""
from __future__ import annotations

import builtins
import errno
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from neurohebb.cli import main
from neurohebb.errors import NeurohebbError
from neurohebb.rundir import MARKER

TINY = ["--preset", "digits", "--train-subset", "100", "--test-subset", "40", "--set", "readout.epochs=1", "--no-progress"]


# ---------------------------------------------------------------------------------------------
# Helpers


def cli(capsys, *args: str) -> tuple[int, str]:
    rc = main(list(args))
    return rc, capsys.readouterr().err


def assert_one_line(rc: int, err: str, *fragments: str) -> str:
    assert rc == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("neurohebb: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in err and "weights_only=False" not in err
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (hidden ones included) with its bytes: 'nothing was lost'."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".staging-" in p.name or ".old-" in p.name or p.name.endswith(".tmp"))


class FakeFS:
    """A file-system layer over one folder that is full (writes fail with ENOSPC) or read-only
    (creating, writing or renaming anything inside fails with EROFS)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.monkeypatch = monkeypatch
        self.full: list[Path] = []
        self.readonly: list[Path] = []
        real_open, real_os_open, real_mkdir, real_replace = builtins.open, os.open, os.mkdir, os.replace

        def inside(path, roots) -> bool:
            try:
                p = Path(os.path.abspath(os.fsdecode(path)))
            except TypeError:  # a file descriptor
                return False
            return any(p == r or r in p.parents for r in roots)

        def fake_open(file, mode="r", *args, **kwargs):
            writing = any(c in mode for c in "wax+")
            if writing and inside(file, self.readonly):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(file))
            fh = real_open(file, mode, *args, **kwargs)
            if writing and inside(file, self.full):
                return _FullFile(fh, str(file))
            return fh

        def fake_os_open(path, flags, mode=0o777, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path, self.readonly):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_os_open(path, flags, mode, *args, **kwargs)

        def fake_mkdir(path, mode=0o777, *args, **kwargs):
            if inside(path, self.readonly):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_mkdir(path, mode, *args, **kwargs)

        def fake_replace(src, dst, *args, **kwargs):
            if inside(dst, self.readonly) or inside(src, self.readonly):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)
        monkeypatch.setattr(os, "open", fake_os_open)
        monkeypatch.setattr(os, "mkdir", fake_mkdir)
        monkeypatch.setattr(os, "replace", fake_replace)


class _FullFile:
    """A writable file on a full disk: opening works, the first byte written fails."""

    def __init__(self, fh, name: str):
        self._fh, self._name = fh, name

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()
        return False

    def __getattr__(self, name):
        return getattr(self._fh, name)


@pytest.fixture
def fake_fs(monkeypatch) -> FakeFS:
    return FakeFS(monkeypatch)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny trained run (read-only use: tests copy it before changing anything)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(trained, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# 1. --overwrite replaces only a neurohebb run, atomically


def test_overwrite_refuses_a_folder_of_runs(capsys, tmp_path, trained):
    folder = tmp_path / "X"
    shutil.copytree(trained, folder / "run_a")
    shutil.copytree(trained, folder / "run_b")
    before = snapshot(folder)
    rc, err = cli(capsys, "train", *TINY, "--out", str(folder), "--overwrite")
    assert_one_line(rc, err, "refusing to overwrite", "not a neurohebb run directory")
    assert snapshot(folder) == before
    assert hidden_leftovers(tmp_path) == []


def test_overwrite_refuses_a_dataset_folder(capsys, tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    (data / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 60)
    (data / "metrics.json").write_text("{}")  # one run-like file is not a run
    before = snapshot(data)
    assert_one_line(*cli(capsys, "train", *TINY, "--out", str(data), "--overwrite"), "refusing to overwrite")
    assert snapshot(data) == before


def test_overwrite_replaces_a_run_and_its_marker_is_written(capsys, tmp_path, trained):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert json.loads((run / MARKER).read_text())["kind"] == "train"
    (run / "old-note.txt").write_text("from the old run")
    rc, _ = cli(capsys, "train", *TINY, "--out", str(run), "--overwrite")
    assert rc == 0
    assert not (run / "old-note.txt").exists() and (run / "checkpoint.pt").is_file() and (run / MARKER).is_file()
    assert hidden_leftovers(tmp_path) == []


def test_overwrite_accepts_a_run_written_before_the_marker(capsys, tmp_path, trained):
    run = tmp_path / "legacy"
    shutil.copytree(trained, run)
    (run / MARKER).unlink()  # config.toml + checkpoint.pt + metrics.json still say "a neurohebb run"
    rc, _ = cli(capsys, "train", *TINY, "--out", str(run), "--overwrite")
    assert rc == 0 and (run / MARKER).is_file()


def test_failed_overwrite_keeps_the_old_run_intact(capsys, tmp_path, trained, fake_fs):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = snapshot(run)
    fake_fs.full.append(tmp_path)  # the disk fills up while the new run is written
    msg = assert_one_line(*cli(capsys, "train", *TINY, "--out", str(run), "--overwrite"), "No space left on device", "free some space")
    assert ".staging-" not in msg  # the message names the folder the user asked for
    assert snapshot(run) == before
    assert hidden_leftovers(tmp_path) == []


def test_interrupted_training_leaves_nothing(capsys, tmp_path, monkeypatch):
    import neurohebb.engine as engine

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "hebbian_phase", interrupted)
    assert main(["train", *TINY, "--out", str(tmp_path / "run")]) == 130
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# 4. One write path: OS errors are one line, staging is cleaned, stale staging removed


def test_out_dot_inside_the_run_directory(capsys, run_copy, monkeypatch):
    before = snapshot(run_copy)
    monkeypatch.chdir(run_copy)
    assert_one_line(*cli(capsys, "train", *TINY, "--out", ".", "--overwrite"), "current directory", "run from its parent")
    assert snapshot(run_copy) == before


def test_out_naming_a_file(capsys, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    for extra in ([], ["--overwrite"]):
        assert_one_line(*cli(capsys, "train", *TINY, "--out", str(target), *extra), "is a file, not a folder")
    assert target.read_text() == "mine"


def test_out_on_a_mount_point(capsys, tmp_path, monkeypatch):
    mount = tmp_path / "mnt"
    mount.mkdir()
    (mount / "keep").write_text("data")
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mount or real(p))
    assert_one_line(*cli(capsys, "train", *TINY, "--out", str(mount), "--overwrite"), "mount point", f"--out {mount / 'run'}")
    assert (mount / "keep").read_text() == "data"


def test_full_disk_at_out_is_one_line_and_leaves_no_staging(capsys, tmp_path, fake_fs):
    fake_fs.full.append(tmp_path)
    assert_one_line(*cli(capsys, "train", *TINY, "--out", str(tmp_path / "run")), "cannot write", str(tmp_path / "run"), "No space left")
    assert list(tmp_path.iterdir()) == []


def test_read_only_out_fails_before_training(capsys, tmp_path, fake_fs, monkeypatch):
    import neurohebb.engine as engine

    fake_fs.readonly.append(tmp_path)
    monkeypatch.setattr(engine, "train_pipeline", lambda *a, **k: pytest.fail("trained although the output is read-only"))
    assert_one_line(*cli(capsys, "train", *TINY, "--out", str(tmp_path / "run")), "Read-only file system")


def test_eval_on_a_read_only_run_fails_before_evaluating(capsys, run_copy, fake_fs, monkeypatch):
    import neurohebb.engine as engine

    before = snapshot(run_copy)
    fake_fs.readonly.append(run_copy)
    monkeypatch.setattr(engine, "evaluate", lambda *a, **k: pytest.fail("evaluated although eval.json cannot be written"))
    assert_one_line(*cli(capsys, "eval", str(run_copy)), "Read-only file system", "eval.json")
    assert snapshot(run_copy) == before


def test_feasibility_json_on_a_read_only_path(capsys, tmp_path, fake_fs):
    fake_fs.readonly.append(tmp_path)
    rc, err = cli(capsys, "feasibility", "--preset", "digits", "--chip", "loihi2", "--activity", "0.1", "--json", str(tmp_path / "f.json"))
    assert_one_line(rc, err, "Read-only file system")
    assert list(tmp_path.iterdir()) == []


def test_full_disk_during_a_write_keeps_the_previous_file(tmp_path, fake_fs):
    from neurohebb.rundir import write_json_atomic

    target = tmp_path / "eval.json"
    target.write_text('{"old": true}')
    fake_fs.full.append(tmp_path)
    with pytest.raises(NeurohebbError, match=r"cannot write .*eval.json: No space left on device; the disk is full"):
        write_json_atomic(target, {"new": True})
    assert target.read_text() == '{"old": true}' and [p.name for p in tmp_path.iterdir()] == ["eval.json"]


def test_stale_staging_of_killed_runs_is_removed_and_live_ones_kept(capsys, tmp_path):
    dead = _dead_pid()
    host = socket.gethostname()
    stale = tmp_path / f".old_run.staging-{dead}@{host}-0123abcd"
    live = tmp_path / f".other.staging-{os.getpid()}@{host}-0123abcd"
    moved_aside = tmp_path / f".kept.old-{dead}@{host}-89abcdef"  # killed between the two renames
    for folder in (stale, live, moved_aside):
        folder.mkdir()
        (folder / "checkpoint.pt").write_bytes(b"x")
    stale_temp = tmp_path / f".eval.json.tmp-{dead}@{host}-0123abcd.tmp"
    live_temp = tmp_path / f".eval.json.tmp-{os.getpid()}@{host}-0123abcd.tmp"
    stale_temp.write_text("half")
    live_temp.write_text("being written")
    assert main(["train", *TINY, "--out", str(tmp_path / "new")]) == 0
    assert not stale.exists() and live.exists()
    assert not stale_temp.exists() and live_temp.exists()
    assert (tmp_path / "kept" / "checkpoint.pt").read_bytes() == b"x" and not moved_aside.exists()


def test_a_run_put_back_after_a_kill_is_not_replaced_without_overwrite(capsys, tmp_path):
    moved_aside = tmp_path / f".kept.old-{_dead_pid()}@{socket.gethostname()}-89abcdef"
    moved_aside.mkdir()
    (moved_aside / "metrics.json").write_text("{}")
    assert_one_line(*cli(capsys, "train", *TINY, "--out", str(tmp_path / "kept")), "already exists")
    assert (tmp_path / "kept" / "metrics.json").read_text() == "{}"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        assert main(["train", *TINY, "--out", str(tmp_path / "run")]) == 0
    finally:
        os.umask(old)
    run = tmp_path / "run"
    assert run.stat().st_mode & 0o777 == 0o750
    assert {p.name: p.stat().st_mode & 0o777 for p in run.iterdir()} == {p.name: 0o640 for p in run.iterdir()}


def test_stray_filesystem_oserror_is_one_line(capsys, monkeypatch):
    import neurohebb.commands.eval as eval_cmd

    def busy(args):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), "/mnt/usb")

    monkeypatch.setattr(eval_cmd, "run", busy)
    assert_one_line(*cli(capsys, "eval", "x"), "/mnt/usb", "busy")


# ---------------------------------------------------------------------------------------------
# 2, 3, 6. Validation before anything is allocated or trained


@pytest.mark.parametrize("override, fragment", [
    ("layers.100000000.lr=0.05", "index 100000000 is out of range"),
    ("layers.5.lr=0.05", "the network has 2 layer(s)"),
    ("layers.1.out_channels=100000000", "needs at least"),
    ("readout.lr_gamma=-1", "readout.lr_gamma must be in (0, 1]"),
    ("readout.lr_gamma=0", "readout.lr_gamma must be in (0, 1]"),
    ("readout.lr_gamma=2", "readout.lr_gamma must be in (0, 1]"),
    ("readout.lr_milestones=[5,-1]", "readout.lr_milestones[0]"),
    ("readout.lr_milestones=[0.5,-1]", "readout.lr_milestones[1]"),
    ("layers=[]", "without layers"),
    ("layers.0.t_invert=inf", "layers.0.t_invert must be > 0 and finite"),
    ("layers.0.activation_param=-1", "layers.0.activation_param"),
    ("readout.lr=nan", "readout.lr must be > 0 and finite"),
])
def test_impossible_settings_are_refused_before_training(capsys, tmp_path, monkeypatch, override, fragment):
    import neurohebb.engine as engine

    monkeypatch.setattr(engine, "load_data_for", lambda *a: pytest.fail("loaded data for an impossible config"))
    t0 = time.perf_counter()
    assert_one_line(*cli(capsys, "train", *TINY, "--set", override, "--out", str(tmp_path / "run")), fragment)
    assert time.perf_counter() - t0 < 5  # no 7.5 GB list of layers was built first
    assert list(tmp_path.iterdir()) == []


def test_size_error_names_the_estimate(capsys):
    from neurohebb.config import resolve_config
    from neurohebb.errors import ConfigError
    from neurohebb.sizes import check_fits_in_memory, estimate_bytes

    config = resolve_config("digits")
    total, _, _ = estimate_bytes(config)
    check_fits_in_memory(config, limit=total)  # exactly fits
    with pytest.raises(ConfigError, match=r"needs at least .* more than this machine's"):
        check_fits_in_memory(config, limit=total - 1)


@pytest.mark.parametrize("args, fragment", [
    (["--precision", ""], "--precision '' is empty"),
    (["--precision", ","], "is empty"),
    (["--precision", "weight=um8"], "weight=um8 is unsigned"),
    (["--precision", "update=u16.14"], "update=u16.14 is unsigned"),
    (["--precision", "weight=q8"], "cannot read number format"),
    (["--seed", "99999999999999999999"], "seed must be an integer in [0, 2**63)"),
    (["--seed", "-1"], "seed must be an integer"),
])
def test_bad_precision_and_seed_are_refused_before_training(capsys, tmp_path, args, fragment):
    assert_one_line(*cli(capsys, "train", *TINY, *args, "--out", str(tmp_path / "run")), fragment)
    assert list(tmp_path.iterdir()) == []


def test_unsigned_mantissa_codes_saturate_and_the_histogram_counts_them():
    from neurohebb.precision.diagnostics import weight_histogram
    from neurohebb.precision.formats import NumberFormat
    from neurohebb.precision.rounding import quantize_codes

    fmt = NumberFormat.parse("um8")
    w = torch.tensor([-1.0, -0.25, 0.0, 0.5, 1.0])
    q = quantize_codes(w, fmt)
    assert int(q.codes.min()) >= 0 and int(q.codes.max()) <= fmt.qmax
    assert q.codes[:3].tolist() == [0.0, 0.0, 0.0]
    hist = weight_histogram(w, fmt)
    assert sum(hist["counts"]) == 5 and hist["counts"][0] == 3


# ---------------------------------------------------------------------------------------------
# 5, 7. A run's own files, checkpoints and TOML files


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("old, new, field", [
    ('dataset = "digits"', 'dataset = "mnist"', "data.dataset"),
    ("out_channels = 32", "out_channels = 64", "layers.0.out_channels"),
    ("t_invert = 1.0", "t_invert = 2.0", "layers.0.t_invert"),
])
def test_eval_refuses_a_config_toml_that_disagrees_with_the_checkpoint(capsys, run_copy, old, new, field):
    _edit(run_copy / "config.toml", old, new)
    before = snapshot(run_copy)
    assert_one_line(*cli(capsys, "eval", str(run_copy)), "does not match", field)
    assert snapshot(run_copy) == before


def test_eval_follows_evaluation_fields_of_config_toml(capsys, run_copy):
    _edit(run_copy / "config.toml", "test_subset = 40", "test_subset = 20")
    assert main(["eval", str(run_copy)]) == 0
    assert json.loads((run_copy / "eval.json").read_text())["n_test"] == 20


def _rewrite_checkpoint(run: Path, change) -> None:
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    change(payload)
    torch.save(payload, run / "checkpoint.pt")


@pytest.mark.parametrize("change, fragment", [
    (lambda p: p.pop("config"), "has no 'config' entry"),
    (lambda p: p.update(num_classes="abc"), "num_classes must be a positive integer, got 'abc'"),
    (lambda p: p.update(state_dict=[1, 2]), "state_dict must map names to tensors, got list"),
    (lambda p: p["state_dict"].pop("readout.bias"), "tensor readout.bias is missing"),
    (lambda p: p["state_dict"].update({"blocks.0.layer.weight": torch.zeros(3, 1, 3, 3)}), "tensor blocks.0.layer.weight has shape (3, 1, 3, 3)"),
    (lambda p: p["config"].update(layers="x"), "invalid config"),
])
@pytest.mark.parametrize("command", ["eval", "feasibility"])
def test_malformed_checkpoints_are_one_line(capsys, run_copy, change, fragment, command):
    _rewrite_checkpoint(run_copy, change)
    args = ["eval", str(run_copy)] if command == "eval" else ["feasibility", "--checkpoint", str(run_copy), "--chip", "loihi2", "--activity", "0.1", "--out", str(run_copy / "f")]
    assert_one_line(*cli(capsys, *args), fragment)


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_runs_no_code(capsys, run_copy, tmp_path):
    marker = tmp_path / "pwned"
    (run_copy / "checkpoint.pt").write_bytes(pickle.dumps({"format": "neurohebb-checkpoint-v1", "x": _Exploit(marker)}))
    assert_one_line(*cli(capsys, "eval", str(run_copy)), "cannot be read safely")
    torch.save({"format": "neurohebb-checkpoint-v1", "x": _Exploit(marker)}, run_copy / "checkpoint.pt")  # zip form
    assert_one_line(*cli(capsys, "feasibility", "--checkpoint", str(run_copy), "--chip", "loihi2"), "cannot be read safely")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["foreign", "malicious", "list"])
def test_stpn_eval_on_foreign_or_malicious_files(capsys, tmp_path, kind):
    marker = tmp_path / "pwned"
    run = tmp_path / "stpn"
    run.mkdir()
    if kind == "foreign":
        torch.save({"weights": torch.zeros(3)}, run / "model.pt")
        fragment = "has no 'config' entry"
    elif kind == "list":
        torch.save([torch.zeros(3)], run / "model.pt")
        fragment = "holds a list"
    else:
        (run / "model.pt").write_bytes(pickle.dumps(_Exploit(marker)))
        fragment = "cannot be read safely"
    assert_one_line(*cli(capsys, "stpn", "eval", str(run)), fragment)
    assert not marker.exists()


@pytest.mark.parametrize("flag", ["--config", "--precision", "--chip-file"])
def test_non_utf8_toml_is_one_line(capsys, tmp_path, flag):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"seed = 1\n# caf\xe9 \xff\n")
    command = "feasibility" if flag == "--chip-file" else "train"
    assert_one_line(*cli(capsys, command, "--preset", "digits", flag, str(bad), "--out", str(tmp_path / "o")), "is not UTF-8 text")


# ---------------------------------------------------------------------------------------------
# Sweeps: damaged point files, concurrent sweeps sharing --out


def test_sweep_point_files_with_missing_or_string_accuracy_are_rerun(tmp_path):
    from neurohebb.precision.sweep import POINT_VERSION, load_points

    points = tmp_path / "points"
    points.mkdir()
    good = {"version": POINT_VERSION, "key": "a", "test_accuracy": 91.5}
    records = {"a": good, "b": {**good, "key": "b", "test_accuracy": "91"}, "c": {k: v for k, v in good.items() if k != "test_accuracy"} | {"key": "c"},
               "d": {**good, "key": "d", "test_accuracy": float("nan")}, "e": {**good, "key": "e", "test_accuracy": True}, "f": [1, 2]}
    for name, record in records.items():
        (points / f"{name}.json").write_text(json.dumps(record))
    assert set(load_points(tmp_path)) == {"a"}


@pytest.mark.slow
def test_concurrent_sweeps_sharing_out_agree(tmp_path):
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "neurohebb", "sweep", *TINY, "--weight-bits", "8", "--update-bits", "16",
           "--rounding", "nearest", "--no-ptq", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    data = json.loads((out / "results.json").read_text())
    rows = data["rows"] if isinstance(data, dict) and "rows" in data else data
    assert len(rows) == 2 and all(np.isfinite(r["test_accuracy"]) for r in rows)
    assert sorted(p.name for p in (out / "points").iterdir() if p.name.startswith(".")) == []


# ---------------------------------------------------------------------------------------------
# 8, 10. Messages, warnings, deploy flags, the feasibility figure


def test_warnings_do_not_print_beside_a_one_line_error(capsys, monkeypatch):
    import warnings

    import neurohebb.commands.eval as eval_cmd

    def warn_then_fail(args):
        warnings.warn("something torch said", UserWarning)
        raise NeurohebbError("the real problem; the fix")

    monkeypatch.setattr(eval_cmd, "run", warn_then_fail)
    assert_one_line(*cli(capsys, "eval", "x"), "the real problem")


def test_warnings_of_a_successful_command_are_shown(capsys, monkeypatch):
    import warnings

    import neurohebb.commands.eval as eval_cmd

    def warn_and_succeed(args):
        warnings.warn("worth knowing", UserWarning)
        return 0

    monkeypatch.setattr(eval_cmd, "run", warn_and_succeed)
    rc, err = cli(capsys, "eval", "x")
    assert rc == 0 and "worth knowing" in err


def test_shard_with_a_wrong_index_range_is_not_called_another_dataset(tmp_path):
    import hashlib

    from neurohebb.data import load_dataset
    from neurohebb.errors import DataError

    data = tmp_path / "mnist"
    data.mkdir()
    x, y = np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.uint8)
    files = []
    for split in ("train", "test"):
        np.savez_compressed(data / f"{split}-00.npz", x=x, y=y)
        digest = hashlib.sha256((data / f"{split}-00.npz").read_bytes()).hexdigest()
        files.append({"file": f"{split}-00.npz", "sha256": digest, "split": split, "index_range": [0, 5 if split == "train" else 4],
                      "arrays": {"x": {"shape": [4, 28, 28], "dtype": "uint8"}, "y": {"shape": [4], "dtype": "uint8"}}})
    (data / "MANIFEST.json").write_text(json.dumps({"dataset": "MNIST", "files": files}))
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data)
    assert "another dataset" not in str(info.value) and "index_range [0, 5)" in str(info.value)


def test_cifar_batch_re_pickled_at_protocol_2_is_accepted():
    from neurohebb.data.cifar import restricted_unpickle

    batch = {b"labels": [3, 1], b"data": np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072), b"batch_label": b"x"}
    for protocol in (2, 5):
        out = restricted_unpickle(pickle.dumps(batch, protocol=protocol), "data_batch_1")
        assert out[b"labels"] == [3, 1] and np.array_equal(out[b"data"], batch[b"data"])


def test_lava_learn_t_epoch_above_the_chip_maximum(capsys, trained):
    from neurohebb.feasibility.chips import load_chip

    epoch_max = load_chip("loihi2").get("learning", "learning_epoch_steps_max")
    assert epoch_max == 63
    assert_one_line(*cli(capsys, "deploy", "lava-learn", str(trained), "--t-epoch", str(epoch_max + 1)),
                    f"--t-epoch {epoch_max + 1}", f"1 to {epoch_max} steps")


def test_lava_learn_unknown_inhibition_path(capsys, trained):
    assert_one_line(*cli(capsys, "deploy", "lava-learn", str(trained), "--inhibition-path", "sideways"),
                    "--inhibition-path 'sideways'", "interneuron, lateral")


def test_wta_auto_picks_a_circuit_the_network_supports():
    """`deploy lava` with no --wta: spiking WTA for a softmax layer, sigma-delta for a Triangle
    layer that folds (power 1), host-side currents for one that does not (power 0.7)."""
    import torch

    from neurohebb.backends.lava.deploy import choose_circuit
    from neurohebb.config import resolve_config
    from neurohebb.description import describe
    from neurohebb.network import HebbNetwork

    cases = (("layers.0.activation=\"softmax\"", "spiking"), ("layers.0.activation_param=1.0", "sigma-delta"),
             ("layers.0.activation_param=0.7", "currents"))
    for override, expected in cases:
        config = resolve_config("mnist-mlp", overrides=["layers.0.out_channels=20", override])
        spec = describe(HebbNetwork(config, generator=torch.Generator().manual_seed(0)))
        assert choose_circuit(spec, None) == expected, override
        assert choose_circuit(spec, "currents") == "currents"


def test_single_chip_feasibility_figure_fills_the_width():
    from neurohebb.config import resolve_config
    from neurohebb.feasibility.analysis import analyse_config
    from neurohebb.feasibility.chips import load_chip
    from neurohebb.feasibility.plots import draw
    from neurohebb.precision import PrecisionPolicy

    report = analyse_config(resolve_config("digits"), [load_chip("loihi2")], PrecisionPolicy(), activity_rate=0.1, network="digits")
    fig = draw(report)
    (ax,) = fig.axes
    assert ax.get_position().width > 0.8
