#!/usr/bin/env python3
"""Celery 5 end to end on a server: its Redis broker and result backend, a --pool=solo worker, a task,
a chord, and the remote control ping (`app.control.inspect().ping()`).

    python3 tests/clients/celery_e2e.py PORT

Needs celery[redis] importable by this python (CI installs it in a venv). Starts the worker as a
subprocess of this python (`-m celery`), in a temporary directory holding the tasks module, and stops
it at the end. Exits non-zero on the first failure. Against redis-server 7.0 every step passes.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import time

TASKS = textwrap.dedent('''
    import os
    from celery import Celery

    url = os.environ["E2E_URL"]
    app = Celery("e2e_tasks", broker=url, backend=url)
    app.conf.update(broker_connection_retry_on_startup=True, task_acks_late=True,
                    result_expires=600, worker_hijack_root_logger=False)

    @app.task
    def add(x, y):
        return x + y

    @app.task
    def tsum(xs):
        return sum(xs)

    @app.task(bind=True, max_retries=2, default_retry_delay=0.2)
    def flaky(self, key):
        # Fails on its first run, succeeds on the retry: the retry goes through the broker again.
        seen = app.backend.client.incr("e2e:flaky:" + key)
        if seen < 2:
            raise self.retry()
        return "ok after %d runs" % seen
''')


def main():
    port = int(sys.argv[1])
    url = "redis://127.0.0.1:%d/0" % port
    work = tempfile.mkdtemp(prefix="celery-e2e-")
    with open(os.path.join(work, "e2e_tasks.py"), "w") as f:
        f.write(TASKS)
    env = dict(os.environ, E2E_URL=url, PYTHONPATH=work)
    log = open(os.path.join(work, "worker.log"), "w")
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "e2e_tasks", "worker", "--pool=solo",
                               "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", "e2e@%h"],
                              cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    os.environ.update(E2E_URL=url)
    sys.path.insert(0, work)
    failed = False
    try:
        from celery import chord, group
        import e2e_tasks as t

        t.app.backend.client.flushdb()
        deadline = time.time() + 60
        replies = None
        while time.time() < deadline and worker.poll() is None:
            replies = t.app.control.inspect(timeout=1.0).ping()
            if replies:
                break
        check("remote control: inspect().ping() answered by the worker",
              bool(replies) and all(v == {"ok": "pong"} for v in replies.values()), replies)
        r = t.add.delay(2, 3)
        check("a task's result", r.get(timeout=30) == 5, r.state)
        c = chord(group(t.add.s(i, i) for i in range(10)))(t.tsum.s())
        check("a chord of 10 tasks and its callback", c.get(timeout=60) == 90, c.state)
        f = t.flaky.delay("k%d" % os.getpid())
        check("a task retried through the broker", f.get(timeout=30).startswith("ok after 2"), f.state)
        many = [t.add.delay(i, 1) for i in range(50)]
        check("50 queued tasks", [m.get(timeout=60) for m in many] == [i + 1 for i in range(50)], "")
    except Exception as e:  # noqa: BLE001 - report anything as a failed check with the worker's log
        failed = True
        print("FAIL: %r" % e)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    if failed or FAILURES:
        print("--- worker log (tail) ---")
        print("".join(open(os.path.join(work, "worker.log")).readlines()[-40:]))
        sys.exit(1)
    print("celery e2e: %d checks passed" % PASSED)


FAILURES = []
PASSED = 0


def check(what, ok, detail):
    global PASSED
    if ok:
        PASSED += 1
        print("ok   %s" % what)
    else:
        FAILURES.append(what)
        print("FAIL %s (%r)" % (what, detail))
        raise RuntimeError(what)


if __name__ == "__main__":
    main()
