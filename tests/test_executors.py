"""Sweeps on Ray: same results.csv as the local executor, a killed worker is retried for its
point only, and the local default never imports Ray."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurohebb.cli import main
from neurohebb.errors import ConfigError
from neurohebb.executors import KILL_ONCE_ENV, make_executor

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["sweep", "--preset", "digits", "--set", "layers.0.out_channels=4", "--set", "layers.1.out_channels=8",
        "--set", "readout.epochs=2", "--train-subset", "60", "--test-subset", "40", "--device", "cpu",
        "--weight-bits", "6,3", "--rounding", "nearest", "--seeds", "1", "--no-progress"]


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r.pop("seconds")  # wall time: the only column allowed to differ
    return rows


@pytest.fixture(scope="module")
def ray_local():
    """One local 2-CPU Ray instance for the module (starting Ray takes several seconds)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "sweep"
    assert main(ARGS + ["--out", str(out)]) == 0
    return out


def test_ray_sweep_gives_the_local_results(ray_local, local_sweep, tmp_path):
    out = tmp_path / "ray"
    assert main(ARGS + ["--out", str(out), "--executor", "ray", "--cpus-per-point", "1", "--keep-runs"]) == 0
    rows = _rows(out)
    # --keep-runs: the driver writes run directories from the checkpoints the tasks return.
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["float-s0", "q-w3-u16-nearest-s0", "q-w6-u16-nearest-s0"]
    run = json.loads((out / "runs" / "q-w3-u16-nearest-s0" / "metrics.json").read_text())
    assert run["test_accuracy"] == json.loads((out / "points" / "q-w3-u16-nearest-s0.json").read_text())["test_accuracy"]
    assert (out / "runs" / "q-w3-u16-nearest-s0" / "checkpoint.pt").is_file()
    assert len(rows) == 1 + 2 + 2  # float, 2 PTQ, 2 quantised
    assert rows == _rows(local_sweep)
    assert sorted(p.name for p in (out / "points").iterdir()) == sorted(p.name for p in (local_sweep / "points").iterdir())
    # Resuming with the other executor finds nothing left to do.
    assert main(ARGS + ["--out", str(out)]) == 0
    assert _rows(out) == rows


def test_killed_workers_are_retried_per_point(ray_local, local_sweep, tmp_path, monkeypatch, capsys):
    """Every point's first attempt kills its own worker process. Without retries the sweep stops
    with a one-line error and keeps what finished; with one retry every point completes and the
    results equal the local sweep's."""
    markers = tmp_path / "markers"
    markers.mkdir()
    from neurohebb import executors

    real = executors.RayExecutor._run

    def with_env(self, ray, *args):  # workers may predate the variable: pass it per task
        return real(self, _EnvRay(ray, {KILL_ONCE_ENV: str(markers)}), *args)

    monkeypatch.setattr(executors.RayExecutor, "_run", with_env)
    out = tmp_path / "ray"
    args = ARGS[:ARGS.index("--weight-bits")] + ["--weight-bits", "3", "--rounding", "nearest", "--no-ptq", "--no-progress"]
    assert main(args + ["--out", str(out), "--executor", "ray", "--max-retries", "0"]) == 2
    assert "its worker died once (WorkerCrashedError); raise --max-retries" in capsys.readouterr().err
    kept = len(_rows(out))
    assert kept < 2
    assert main(args + ["--out", str(out), "--executor", "ray", "--max-retries", "1"]) == 0
    assert f"{kept} of 2 points already done" in capsys.readouterr().out
    assert sorted(p.name for p in markers.iterdir()) == ["float-s0", "q-w3-u16-nearest-s0"]  # each killed once
    local = [r for r in _rows(local_sweep) if r["kind"] != "ptq" and r["weight_bits"] in ("", "3")]
    assert _rows(out) == local and len(local) == 2


class _EnvRay:
    """Ray with an env var added to every task's runtime environment (what a test needs to reach
    worker processes that Ray may already have started)."""

    def __init__(self, ray, env: dict[str, str]):
        self._ray, self._env = ray, env

    def __getattr__(self, name):
        return getattr(self._ray, name)

    def remote(self, fn):
        remote = self._ray.remote(fn)
        env = self._env

        class Wrapped:
            def options(self, **kw):
                return remote.options(runtime_env={"env_vars": env}, **kw)

        return Wrapped()


def test_local_default_never_imports_ray(tmp_path):
    args = ARGS[:ARGS.index("--weight-bits")] + ["--weight-bits", "3", "--rounding", "nearest", "--no-ptq",
                                                 "--no-progress", "--out", str(tmp_path / "s")]
    code = (
        "import sys\n"
        "from neurohebb.cli import main\n"
        f"assert main({args!r}) == 0\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_missing_ray_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(ConfigError, match=r"--executor ray needs Ray: pip install 'neurohebb\[ray\]'"):
        make_executor("ray")
    assert make_executor("local") is None
    with pytest.raises(ConfigError, match="--address needs --executor ray"):
        make_executor("local", address="127.0.0.1:6379")


def test_interrupt_cancels_the_outstanding_points_and_keeps_finished_ones(ray_local, tmp_path):
    from neurohebb.config import resolve_config
    from neurohebb.executors import RayExecutor
    from neurohebb.precision.sweep import SweepPlan, load_points, run_sweep

    config = resolve_config("digits", overrides=["layers.0.out_channels=4", "layers.1.out_channels=8", "readout.epochs=2",
                                                 "data.train_subset=60", "data.test_subset=40", 'device="cpu"'])
    plan = SweepPlan(config=config, weight_bits=[6, 5, 4, 3], roundings=["nearest"], ptq=False)
    lines = []

    def log(line: str) -> None:
        lines.append(line)
        if "[1/" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, tmp_path / "s", progress=False, log=log, executor=RayExecutor())
    assert len(load_points(tmp_path / "s")) == 1
    assert any("cancelled" in line and "rerun to resume" in line for line in lines)
    assert (tmp_path / "s" / "results.csv").read_text().count("\n") == 2  # header + the finished point


def test_an_address_nobody_listens_on_fails_at_once():
    import socket

    from neurohebb.errors import NeurohebbError
    from neurohebb.executors import check_reachable

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NeurohebbError, match=f"no Ray cluster answers at 127.0.0.1:{port} .*ray start --head"):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="must look like HOST:PORT"):
        check_reachable("headnode")
    check_reachable("auto")
