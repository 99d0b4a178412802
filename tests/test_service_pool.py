"""The worker pool: crashed, hung and cancelled tasks cost a worker restart, never the service."""

from __future__ import annotations

import time

import pytest

from diarize.config import PipelineConfig
from service.pool import JOB, QueueFull, Task, TaskCancelled, TaskTimeout, WorkerCrashed, WorkerPool


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(1, PipelineConfig().model_dump(mode="json"), threads=1, queue_limit=0)
    p.start()
    assert p.wait_ready(120)
    yield p
    p.close()


def test_a_crash_is_retried_then_reported_and_the_worker_replaced(pool):
    restarts = pool.restarts
    task = pool.submit(Task("sleep", {"crash": True}, retries=1))
    with pytest.raises(WorkerCrashed):
        task.future.result(120)
    assert task.attempts == 2 and pool.restarts == restarts + 2
    assert pool.submit(Task("sleep", {"seconds": 0})).future.result(120) == {"slept": 0}


def test_a_hung_task_times_out(pool):
    start = time.monotonic()
    task = pool.submit(Task("sleep", {"seconds": 60}, timeout=1.0))
    with pytest.raises(TaskTimeout):
        task.future.result(60)
    assert time.monotonic() - start < 30


def test_cancel_a_running_task_and_a_full_queue(pool):
    assert pool.wait_ready(120)
    running = pool.submit(Task("sleep", {"seconds": 60}))
    while pool.busy_workers == 0:
        time.sleep(0.05)
    with pytest.raises(QueueFull):
        pool.submit(Task("sleep", {"seconds": 0}))
    queued_job = pool.submit(Task("sleep", {"seconds": 0}, priority=JOB))  # jobs are not bounded here
    assert pool.depth(JOB) == 1
    pool.cancel(running)
    with pytest.raises(TaskCancelled):
        running.future.result(30)
    assert queued_job.future.result(120) == {"slept": 0}


def test_jobs_get_their_share_while_synchronous_tasks_keep_coming():
    """With strict priority, synchronous tasks that kept coming starved queued jobs (1 of 100 done in 154 s)."""
    from service.pool import SYNC, FairQueue

    q = FairQueue(job_share=0.25)
    for i in range(3):
        q.put((JOB, i, f"job{i}"))
    picked, n = [], 100
    for _ in range(12):  # a synchronous task always waits: one arrives for each one taken
        q.put((SYNC, n, f"sync{n}"))
        n += 1
        picked.append(q.get(timeout=1)[2])
    assert [i for i, p in enumerate(picked) if p.startswith("job")] == [3, 7, 11]
    q.put((-1, -1, None))
    assert q.get(timeout=1)[2] is None  # a stop marker goes first
    strict = FairQueue(job_share=0.0)
    strict.put((JOB, 1, "job"))
    strict.put((SYNC, 2, "sync"))
    assert [strict.get(timeout=1)[2] for _ in range(2)] == ["sync", "job"]


def job_waits_behind_synchronous_tasks(job_share: float) -> bool:
    """Whether a queued job is still waiting after 12 synchronous tasks, four always in flight, ran before it."""
    pool = WorkerPool(1, PipelineConfig().model_dump(mode="json"), threads=1, queue_limit=3, job_share=job_share)
    pool.start()
    try:
        assert pool.wait_ready(120)
        syncs = [pool.submit(Task("sleep", {"seconds": 0.1})) for _ in range(4)]
        job = pool.submit(Task("sleep", {"seconds": 0}, priority=JOB))
        for _ in range(12):  # four synchronous clients, each asking again as soon as it is answered
            syncs.pop(0).future.result(30)
            syncs.append(pool.submit(Task("sleep", {"seconds": 0.1})))
        return not job.future.done()
    finally:
        pool.close()


def test_a_queued_job_runs_while_synchronous_requests_keep_the_worker_busy():
    assert not job_waits_behind_synchronous_tasks(0.25)
