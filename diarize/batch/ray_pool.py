"""The same pool on a Ray cluster: one actor per worker holds the models; Ray is imported only here.

Inputs are passed by path, so every node must see the archive at the same path (a shared mount).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .errors import BatchError
from .options import BatchOptions
from .pools import Outcome, Task
from .worker import Worker

#: Give up when no actor has loaded its models after this long (the cluster has no room for one).
START_TIMEOUT = 600.0


class _RayWorker:
    def __init__(self, options_json: str, threads: int) -> None:
        self.worker = Worker(BatchOptions.model_validate_json(options_json), threads)

    def ready(self) -> bool:
        return True

    def process(self, path: str) -> dict[str, Any]:
        return self.worker.process(path)


@dataclass
class _Actor:
    handle: Any
    starting: Any
    task: Task | None = None
    ref: Any = field(default=None)


def connect(address: str) -> tuple[Any, bool]:
    """Import Ray and join the cluster at ``address`` ('local' starts one here); reuses a connection made before.

    Returns the module and whether this call started the connection (and so must end it).
    """
    try:
        import ray
    except ImportError:
        raise BatchError("--ray needs Ray, an optional extra: pip install 'diarize[ray]'") from None
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 logging_level="WARNING", log_to_driver=False)
    except Exception as exc:
        raise BatchError(f"cannot start or reach Ray at {address!r}: {' '.join(str(exc).split())}") from exc
    return ray, True


def cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class RayPool:
    """``workers`` actors of ``threads`` CPUs each; results come back to the driver as they finish."""

    def __init__(self, ray: Any, options: BatchOptions, workers: int, threads: int) -> None:
        self.ray = ray
        self.slots, self.threads = workers, threads
        self._cls = ray.remote(num_cpus=threads, max_restarts=0)(_RayWorker)
        self._args = (options.model_dump_json(), threads)
        self._since = time.monotonic()
        self._actors = [self._spawn() for _ in range(workers)]

    def _spawn(self) -> _Actor:
        handle = self._cls.remote(*self._args)
        return _Actor(handle, handle.ready.remote())

    def free(self) -> bool:
        return any(a.starting is None and a.task is None for a in self._actors)

    def submit(self, task: Task) -> None:
        actor = next(a for a in self._actors if a.starting is None and a.task is None)
        actor.task, actor.ref = task, actor.handle.process.remote(task.path)

    def poll(self, timeout: float) -> list[Outcome]:
        owner = {a.starting: a for a in self._actors if a.starting is not None}
        owner.update({a.ref: a for a in self._actors if a.task is not None})
        if not owner:
            time.sleep(timeout)
            return []
        refs = list(owner)
        self.ray.wait(refs, num_returns=1, timeout=timeout)
        done, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        outcomes: list[Outcome] = []
        for ref in done:
            actor = owner[ref]
            if ref is actor.starting:
                self._started(actor)
            else:
                outcomes.append(self._finished(actor))
        if all(a.starting is not None for a in self._actors) and time.monotonic() - self._since > START_TIMEOUT:
            self.close(cancel=True)
            raise BatchError(f"no Ray worker started within {START_TIMEOUT:.0f} s: is there a node with "
                             f"{self._args[1]} free CPUs?")
        return outcomes

    def _started(self, actor: _Actor) -> None:
        try:
            self.ray.get(actor.starting)
        except Exception as exc:
            self.close(cancel=True)
            raise BatchError(f"cannot load the models on a Ray worker: {_last_line(exc)}") from exc
        actor.starting = None

    def _finished(self, actor: _Actor) -> Outcome:
        task, ref = actor.task, actor.ref
        assert task is not None
        actor.task = actor.ref = None
        try:
            return Outcome(task.index, self.ray.get(ref))
        except self.ray.exceptions.RayActorError as exc:
            self._actors[self._actors.index(actor)] = self._spawn()
            return Outcome(task.index, {"error": f"the Ray worker died on this file: {_last_line(exc)}"})
        except self.ray.exceptions.RayError as exc:
            return Outcome(task.index, {"error": f"Ray task failed: {_last_line(exc)}"})

    def close(self, cancel: bool = False) -> None:
        for actor in self._actors:
            self.ray.kill(actor.handle)
        self._actors = []


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
