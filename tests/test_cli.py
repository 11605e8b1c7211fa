"""The command line: --help everywhere, and one-line errors with exit code 2 for bad input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurohebb.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurohebb", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("neurohebb: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no public accessor
    assert {"demo", "train", "eval", "download"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: neurohebb" in capsys.readouterr().out


def test_every_out_option_has_the_short_form():
    """`-o` means the output path in every command that writes one (as in `export nir`)."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse has no public accessor
    seen = 0

    def visit(p):
        nonlocal seen
        for action in p._actions:  # noqa: SLF001
            if "--out" in action.option_strings:
                seen += 1
                assert "-o" in action.option_strings, p.prog
            if isinstance(action, type(parser._subparsers._group_actions[0])):  # noqa: SLF001
                for sub in action.choices.values():
                    visit(sub)

    for sub in commands.values():
        visit(sub)
    assert seen >= 9
    assert parser.parse_args(["train", "--preset", "digits", "-o", "runs/x"]).out == "runs/x"


def test_unknown_preset():
    assert_one_line_error(run_cli("train", "--preset", "resnet50"), "unknown preset", "digits")


def test_cuda_without_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = tmp_path / "run"
    assert_one_line_error(run_cli("train", "--preset", "digits", "--device", "cuda", "--out", str(out)), "no CUDA GPU", "--device cpu")
    assert not out.exists()


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_one_line_error(run_cli("train", "--preset", "digits", "--out", str(blocker / "run")), "cannot write to output directory")


def test_missing_dataset_names_the_fix(tmp_path):
    result = run_cli("train", "--preset", "mnist-mlp", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "neurohebb download mnist")
    assert not (tmp_path / "run").exists()


def test_corrupt_shard_is_detected(tmp_path):
    data = tmp_path / "mnist"
    data.mkdir()
    x = np.zeros((4, 28, 28), np.uint8)
    y = np.arange(4, dtype=np.uint8)
    for split in ("train", "test"):
        np.savez_compressed(data / f"{split}-00.npz", x=x, y=y)
    import hashlib
    import json

    files = [{"file": f"{s}-00.npz", "sha256": hashlib.sha256((data / f"{s}-00.npz").read_bytes()).hexdigest(), "split": s,
              "index_range": [0, 4], "arrays": {"x": {"shape": [4, 28, 28], "dtype": "uint8"}, "y": {"shape": [4], "dtype": "uint8"}}}
             for s in ("train", "test")]
    (data / "MANIFEST.json").write_text(json.dumps({"dataset": "MNIST", "files": files}))
    with open(data / "train-00.npz", "r+b") as fh:  # flip bytes after the manifest was written
        fh.seek(40)
        fh.write(b"\xff\xff\xff\xff")
    result = run_cli("train", "--preset", "mnist-mlp", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "sha256")
    assert not (tmp_path / "run").exists()


def test_diverging_weights_are_reported_and_nothing_is_written(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "--preset", "digits", "--set", "layers.0.lr=1e38", "--set", 'layers.0.lr_schedule="constant"',
                     "--set", "layers.0.normalize_update=false", "--set", "readout.epochs=1", "--no-progress", "--out", str(out))
    assert_one_line_error(result, "NaN/Inf", "lower layers.0.lr")
    assert not out.exists()


def test_eval_of_a_missing_run_directory(tmp_path):
    assert_one_line_error(run_cli("eval", str(tmp_path / "nope")), "not found")


def test_train_then_eval_round_trip(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "--preset", "digits", "--set", "readout.epochs=3", "--no-progress", "--out", str(out))
    assert result.returncode == 0, result.stderr
    import json

    trained = json.loads((out / "metrics.json").read_text())["test_accuracy"]
    result = run_cli("eval", str(out), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "eval.json").read_text())["test_accuracy"] == pytest.approx(trained, abs=1e-6)


def test_train_under_a_precision_policy_writes_a_quantised_run(tmp_path):
    import json

    import torch

    out = tmp_path / "run"
    result = run_cli("train", "--preset", "digits", "--set", "readout.epochs=2", "--set", "data.train_subset=300",
                     "--no-progress", "--precision", "weight=m6:nearest,update=s12.10:nearest", "--out", str(out))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["policy"] == "weight=m6:nearest,update=s12.10:nearest" and metrics["mode"] == "fake-quant"
    assert [d["layer"] for d in metrics["diagnostics"]] == [0, 1]
    state = torch.load(out / "checkpoint.pt", weights_only=True)["state_dict"]
    first = state["blocks.0.layer.weight"]
    # every stored weight sits on one 6-bit mantissa grid: at most 32 distinct magnitudes
    assert torch.unique(first.abs()).numel() <= 32
    bad = run_cli("train", "--preset", "digits", "--precision", "weight=s40.2", "--out", str(tmp_path / "bad"))
    assert_one_line_error(bad, "1 to 32 bits")
    assert not (tmp_path / "bad").exists()


def test_sigterm_leaves_no_partial_run_directory(tmp_path):
    """A killed run (SIGTERM, as a scheduler sends) cleans its staging folder like Ctrl-C does."""
    import signal
    import time

    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "neurohebb", "train", "--preset", "digits", "--set", "readout.epochs=100000",
                             "--no-progress", "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob(".run.staging-*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert list(tmp_path.glob(".run.staging-*")), "the run never started staging"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not out.exists() and not list(tmp_path.glob(".run.staging-*"))
