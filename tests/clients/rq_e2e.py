#!/usr/bin/env python3
"""Issue 17: RQ 2 end to end on a server. A job is enqueued, a burst worker runs it and
`job.return_value()` reads its result (RQ 2 keeps results in a stream per job: XADD MAXLEN, XREVRANGE,
blocking XREAD for `latest_result(timeout=...)`); a failing job lands in the failed registry with its
traceback and is retried; a dependent job waits for its parent; a scheduled job (`enqueue_in`) is moved
to the queue by the worker's scheduler; the `rq worker --burst` command line runs a job too.

    python3 tests/clients/rq_e2e.py PORT

Needs rq>=2,<3 importable by this python (CI installs it in the Celery venv). The jobs are stdlib
functions named by string ('operator.add'), so the worker needs no module of ours. Exits non-zero on the
first failure. Against redis-server 7.0 every step passes.
"""
import os
import subprocess
import sys
import time

from redis import Redis
from rq import Queue, Retry, Worker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry


class E2EWorker(Worker):
    """RQ's Worker with a pubsub thread that polls every 0.2 s instead of 60 s. RQ's teardown sends
    UNSUBSCRIBE, then stops and joins the thread (redis-py 8.2's `PubSubWorkerThread.stop` joins with no
    timeout); when the UNSUBSCRIBE reply reaches the thread before the flag is cleared, the thread waits
    out its whole sleep_time for a subscription that never comes. With RQ's 60 s every burst worker
    then took a minute to return, 1 in 2 runs against redis-server 7.0 too on a loaded machine (the
    scheduled job then missed its deadline, or the run its timeout)."""

    def subscribe(self):
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=0.2, daemon=True, exception_handler=self._pubsub_exception_handler
        )


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    port = int(sys.argv[1])
    redis = Redis(host="127.0.0.1", port=port)
    name = "e2e-%d" % os.getpid()
    q = Queue(name, connection=redis)
    q.empty()

    # Enqueue, burst-work, read the result from the job's result stream.
    job = q.enqueue("operator.add", 2, 3, result_ttl=600)
    check(job.get_status() == JobStatus.QUEUED, job.get_status())
    check(q.count == 1 and q.job_ids == [job.id], (q.count, q.job_ids))
    dependent = q.enqueue("operator.mul", 6, 7, depends_on=job)
    check(dependent.get_status() == JobStatus.DEFERRED, dependent.get_status())
    failing = q.enqueue("operator.truediv", 1, 0, retry=Retry(max=1))
    meta = q.enqueue("operator.concat", "ab", "cd", meta={"owner": "e2e"}, job_id="e2e-meta-%d" % os.getpid())

    worker = E2EWorker([q], connection=redis, name="w-%d" % os.getpid())
    check(worker.work(burst=True, logging_level="CRITICAL"), "burst worker did no work")

    job.refresh()
    check(job.get_status() == JobStatus.FINISHED, job.get_status())
    check(job.return_value() == 5, job.return_value())
    result = job.latest_result()
    check(result.type == result.Type.SUCCESSFUL and result.return_value == 5, result)
    check(len(job.results()) == 1, job.results())
    check(redis.type("rq:results:" + job.id) == b"stream", redis.type("rq:results:" + job.id))

    dependent.refresh()
    check(dependent.get_status() == JobStatus.FINISHED and dependent.return_value() == 42, dependent.get_status())
    check(Job.fetch(meta.id, connection=redis).meta == {"owner": "e2e"}, "meta lost")
    check(meta.return_value() == "abcd", meta.return_value())

    # The failing job ran twice (one retry), then failed with its traceback.
    failing.refresh()
    check(failing.get_status() == JobStatus.FAILED, failing.get_status())
    failed = failing.latest_result()
    check(failed.type == failed.Type.FAILED and "ZeroDivisionError" in failed.exc_string, failed)
    check(failing.id in FailedJobRegistry(queue=q).get_job_ids(), "not in the failed registry")
    runs = len(failing.results())
    check(runs >= 1 and failing.retries_left == 0, (runs, failing.retries_left))
    finished = FinishedJobRegistry(queue=q).get_job_ids()
    check(set(finished) == {job.id, dependent.id, meta.id}, finished)

    # Requeued from the failed registry, it runs (and fails) again: one more result in its stream.
    FailedJobRegistry(queue=q).requeue(failing.id)
    check(q.count == 1, q.count)
    E2EWorker([q], connection=redis).work(burst=True, logging_level="CRITICAL")
    check(len(failing.results()) == runs + 1, (runs, len(failing.results())))

    # A scheduled job: in the scheduled registry, moved to the queue by the worker's scheduler.
    later = q.enqueue_in(__import__("datetime").timedelta(seconds=1), "operator.neg", 9)
    check(later.id in ScheduledJobRegistry(queue=q).get_job_ids(), "not scheduled")
    check(later.get_status() == JobStatus.SCHEDULED, later.get_status())
    deadline = time.time() + 20
    while later.get_status(refresh=True) != JobStatus.FINISHED and time.time() < deadline:
        E2EWorker([q], connection=redis).work(burst=True, with_scheduler=True, logging_level="CRITICAL")
        time.sleep(0.2)
    check(later.return_value() == -9, (later.get_status(), later.return_value()))

    # A blocking read of a result that is not there yet: latest_result(timeout) waits on XREAD BLOCK.
    pending = q.enqueue("operator.pow", 2, 10)
    t0 = time.time()
    check(pending.latest_result(timeout=1) is None, "a result before any worker ran")
    check(time.time() - t0 >= 0.9, "latest_result(timeout=1) returned at once")

    # The command line worker in burst mode runs it.
    url = "redis://127.0.0.1:%d/0" % port
    cli = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--quiet", "--url", url, "-w", "rq_e2e.E2EWorker", name]
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
    check(out.returncode == 0, out.stdout + out.stderr)
    check(pending.return_value(refresh=True) == 1024, pending.return_value())

    # Cleanup: every job of this queue, its registries and results.
    for j in [job, dependent, failing, meta, later, pending]:
        j.delete()
    q.delete(delete_jobs=True)
    print("rq: enqueue, burst worker, return_value, retry, dependency, scheduler, rq worker --burst OK")


if __name__ == "__main__":
    main()
