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
