"""Where sweep points run: here, one after another (the default), or as Ray tasks on a cluster.

Why the driver writes every file: workers may sit on other machines without the sweep folder,
so a task returns its metrics (and, for float points, the checkpoint bytes) and the driver
writes `points/*.json`, checkpoints and tables exactly as the local executor does; a resumed
or mixed sweep cannot tell which executor made a point. Ray is optional and imported only here,
only when `--executor ray` is chosen.

Failure handling: a worker process that dies (killed, out of memory, node lost) is retried by
Ray up to `max_retries` times, for that point only. An error raised by the point's own code
(bad config, NaN weights) is not retried: the sweep stops, keeping every finished point.
Ctrl-C cancels the outstanding tasks and keeps the finished points; rerunning resumes.
"""
from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, NeurohebbError

EXECUTORS = ("local", "ray")
# Test hook: a folder; a point whose marker is absent there creates it and kills its own worker
# process, so the retry path can be tested for real. Never set outside the tests.
KILL_ONCE_ENV = "NEUROHEBB_TEST_KILL_ONCE_DIR"


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'neurohebb[ray]' (or pip install ray), or use --executor local") from None
    return ray


def _checkpoint_bytes(net) -> bytes:
    from .network import save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.pt"
        save_checkpoint(net, path)
        return path.read_bytes()


def _net_from_bytes(data: bytes):
    from .network import load_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.pt"
        path.write_bytes(data)
        return load_checkpoint(path)


def _remote_point(plan, point, dataset, float_ckpt: bytes | None, threads: int) -> tuple[Any, bytes | None]:
    """Body of one Ray task: run the point, return (outcome without the net, checkpoint bytes)."""
    import torch

    from .precision.sweep import execute_point

    marker_dir = os.environ.get(KILL_ONCE_ENV)
    if marker_dir:
        marker = Path(marker_dir) / point.key
        if not marker.exists():
            marker.touch()
            os._exit(1)  # a worker crash, not an exception: Ray must retry it
    torch.set_num_threads(max(1, threads))
    float_net = _net_from_bytes(float_ckpt) if float_ckpt is not None else None
    outcome = execute_point(plan, point, dataset, float_net, progress=False)
    blob = _checkpoint_bytes(outcome.net) if outcome.net is not None else None
    outcome.net = outcome.float_net = None
    return outcome, blob


@dataclass
class RayExecutor:
    """Each sweep point is one Ray task with `cpus` CPUs and `gpus` GPUs (fractions allowed).

    `address` None starts a private local Ray instance (or reuses one already initialised in this
    process); "auto" or HOST:PORT joins an existing cluster started with `ray start --head`.
    """

    address: str | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not self.cpus > 0 or self.gpus < 0 or self.max_retries < 0:
            raise ConfigError("--cpus-per-point must be > 0, --gpus-per-point >= 0 and --max-retries >= 0")

    def run(self, plan, out: Path, todo: list, dataset, on_done: Callable, log: Callable[[str], None]) -> None:
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            check_reachable(self.address)
            try:
                ray.init(address=self.address, include_dashboard=False, logging_level="ERROR",
                         log_to_driver=False, configure_logging=True)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = self.address or "a local instance"
                raise NeurohebbError(f"cannot start or reach Ray at {where} ({str(exc).splitlines()[0]}); "
                                     "start one with `ray start --head` and pass --address HOST:PORT") from None
        try:
            self._run(ray, plan, out, todo, dataset, on_done, log)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, plan, out: Path, todo: list, dataset, on_done: Callable, log: Callable[[str], None]) -> None:
        task = ray.remote(_remote_point).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries,
                                                  retry_exceptions=False)
        threads = max(1, int(self.cpus))
        dataset_ref = ray.put(dataset)
        pending: dict[Any, Any] = {}  # ObjectRef -> point
        waiting_ptq: dict[int, list] = {}  # seed -> PTQ points waiting for that seed's float checkpoint
        float_todo = {p.seed for p in todo if p.kind == "float"}

        def submit(point, ckpt: bytes | None = None) -> None:
            pending[task.remote(plan, point, dataset_ref, ckpt, threads)] = point

        for point in todo:
            if point.kind == "ptq":
                ckpt = out / "points" / f"float-s{point.seed}.pt"
                if point.seed in float_todo:
                    waiting_ptq.setdefault(point.seed, []).append(point)
                else:
                    submit(point, ckpt.read_bytes() if ckpt.is_file() else None)
            else:
                submit(point)
        log(f"sweep: {len(todo)} points as Ray tasks ({self.cpus:g} CPU, {self.gpus:g} GPU each, "
            f"{int(ray.cluster_resources().get('CPU', 0))} CPUs in the cluster)")
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                point = pending.pop(ref)
                try:
                    outcome, blob = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, NeurohebbError):
                        raise cause from None
                    raise NeurohebbError(f"sweep point {point.key} failed: {str(cause or exc).splitlines()[0]}") from None
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayError) as exc:
                    raise NeurohebbError(f"sweep point {point.key}: its worker died {_times(self.max_retries + 1)} "
                                         f"({type(exc).__name__}); raise --max-retries or check the node's memory") from None
                if blob is not None:
                    outcome.net = _net_from_bytes(blob)
                on_done(point, outcome)
                if point.kind == "float":
                    for ptq in waiting_ptq.pop(point.seed, []):
                        submit(ptq, blob)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            if pending:
                log(f"sweep: cancelled {len(pending)} running points; finished points are kept, rerun to resume")
            raise


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail at once on a HOST:PORT nothing listens on (Ray itself retries for minutes)."""
    if address is None or address == "auto" or address.startswith("ray://"):
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--address {address!r} must look like HOST:PORT (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as exc:
        raise NeurohebbError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                             "`ray start --head --port PORT` there, or drop --address to use a local instance") from None


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def make_executor(name: str, address: str | None = None, cpus: float = 1.0, gpus: float = 0.0,
                  max_retries: int = 3) -> RayExecutor | None:
    """None for the local executor (no Ray import), a RayExecutor for "ray"."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r} is unknown; choose one of: {', '.join(EXECUTORS)}")
    if name == "local":
        if address is not None:
            raise ConfigError("--address needs --executor ray")
        return None
    import_ray()  # fail before any work when Ray is missing or the cluster is unreachable
    check_reachable(address)
    return RayExecutor(address, cpus, gpus, max_retries)
