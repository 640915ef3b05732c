// Issues 15 and 17: BullMQ (on ioredis) end to end. A Queue adds a job, a Worker completes it with a
// return value, a delayed job runs after its delay, a failing job is retried then fails, and QueueEvents
// (a blocking XREAD on the events stream) sees `completed`. BullMQ runs nearly every operation as a Lua
// script over hashes, sorted sets, lists and streams, so this exercises the scripting engine hard.
//
//   prefix=$(mktemp -d)
//   npm install --prefix "$prefix" --no-audit --no-fund bullmq ioredis
//   NODE_PATH="$prefix/node_modules" node tests/clients/bullmq.js PORT
//
// Passes against redis-server 7.0 too. Exits non-zero on the first failure.
'use strict';
const assert = require('assert');
const { Queue, Worker, QueueEvents, FlowProducer } = require('bullmq');

const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: bullmq.js PORT');
  process.exit(2);
}
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves with the first event `name` on `emitter` whose payload satisfies `pred`, or rejects after `ms`.
function once(emitter, name, pred, ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${name}' event within ${ms} ms`)), ms);
    const h = (...args) => {
      if (pred(...args)) {
        clearTimeout(t);
        emitter.off(name, h);
        resolve(args);
      }
    };
    emitter.on(name, h);
  });
}

async function main() {
  const name = 'e2e-' + process.pid;
  const queue = new Queue(name, { connection });
  await queue.waitUntilReady();
  await queue.obliterate({ force: true });
  const events = new QueueEvents(name, { connection });
  await events.waitUntilReady();
  events.setMaxListeners(64); // 20 jobs awaited at once below
  queue.setMaxListeners(64);

  const ran = [];
  const worker = new Worker(
    name,
    async (job) => {
      ran.push({ name: job.name, at: Date.now() });
      if (job.name === 'fail') throw new Error('boom ' + job.attemptsMade);
      if (job.name === 'progress') await job.updateProgress(50);
      return { sum: job.data.a + job.data.b, name: job.name };
    },
    { connection, concurrency: 2 },
  );
  await worker.waitUntilReady();

  // A job completes with its return value, seen by QueueEvents and job.waitUntilFinished.
  const job = await queue.add('add', { a: 2, b: 3 });
  const seen = once(events, 'completed', (e) => e.jobId === job.id, 10000);
  const value = await job.waitUntilFinished(events, 10000);
  assert.deepStrictEqual(value, { sum: 5, name: 'add' });
  const [ev] = await seen;
  assert.deepStrictEqual(typeof ev.returnvalue === "string" ? JSON.parse(ev.returnvalue) : ev.returnvalue, { sum: 5, name: 'add' });
  const done = await queue.getJob(job.id);
  assert.strictEqual(await done.getState(), 'completed');
  assert.deepStrictEqual(done.returnvalue, { sum: 5, name: 'add' });
  assert.strictEqual(done.attemptsMade, 1);

  // A delayed job waits in the delayed set, then runs no earlier than its delay.
  const t0 = Date.now();
  const delayed = await queue.add('later', { a: 1, b: 1 }, { delay: 700 });
  assert.strictEqual(await delayed.getState(), 'delayed');
  assert.strictEqual(await queue.getDelayedCount(), 1);
  assert.deepStrictEqual(await delayed.waitUntilFinished(events, 10000), { sum: 2, name: 'later' });
  const laterRun = ran.find((r) => r.name === 'later');
  assert.ok(laterRun.at - t0 >= 650, `delayed job ran after ${laterRun.at - t0} ms`);
  assert.strictEqual(await queue.getDelayedCount(), 0);

  // A failing job is retried (with a backoff) then fails for good; QueueEvents sees `failed`.
  const failing = await queue.add('fail', {}, { attempts: 2, backoff: { type: 'fixed', delay: 100 } });
  const failed = once(events, 'failed', (e) => e.jobId === failing.id, 10000);
  await assert.rejects(failing.waitUntilFinished(events, 10000), /boom 1/);
  await failed;
  const f = await queue.getJob(failing.id);
  assert.strictEqual(await f.getState(), 'failed');
  assert.strictEqual(f.attemptsMade, 2);
  assert.strictEqual(f.failedReason, 'boom 1');

  // Progress events, priorities and bulk adds.
  const progressed = once(events, 'progress', (e) => e.data === 50, 10000);
  const p = await queue.add('progress', { a: 0, b: 0 }, { priority: 3 });
  await progressed;
  await p.waitUntilFinished(events, 10000);
  const bulk = await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'bulk', data: { a: i, b: i } })));
  const sums = await Promise.all(bulk.map((j) => j.waitUntilFinished(events, 10000)));
  assert.deepStrictEqual(sums.map((s) => s.sum), bulk.map((_, i) => 2 * i));

  // A parent/child flow: the parent runs after its children and reads their values.
  const flowWorkerName = name + '-flow';
  const flowWorker = new Worker(
    flowWorkerName,
    async (j) => (j.name === 'parent' ? Object.values(await j.getChildrenValues()).reduce((a, b) => a + b, 0) : j.data.n),
    { connection },
  );
  const flowEvents = new QueueEvents(flowWorkerName, { connection });
  await flowEvents.waitUntilReady();
  const flow = new FlowProducer({ connection });
  const tree = await flow.add({
    name: 'parent',
    queueName: flowWorkerName,
    children: [1, 2, 3].map((n) => ({ name: 'child', queueName: flowWorkerName, data: { n } })),
  });
  assert.strictEqual(await tree.job.waitUntilFinished(flowEvents, 10000), 6);

  // Pause and resume: a job added while paused waits, then runs after resume.
  await queue.pause();
  assert.strictEqual(await queue.isPaused(), true);
  const paused = await queue.add('add', { a: 10, b: 10 });
  await sleep(200);
  assert.strictEqual(await paused.getState(), 'waiting');
  await queue.resume();
  assert.deepStrictEqual(await paused.waitUntilFinished(events, 10000), { sum: 20, name: 'add' });

  // Logs, data updates, priority changes, promoting a delayed job, deduplication.
  const held = await queue.add('add', { a: 1, b: 2 }, { delay: 60000, deduplication: { id: 'dd' } });
  const again = await queue.add('add', { a: 5, b: 5 }, { deduplication: { id: 'dd' } });
  assert.strictEqual(again.id, held.id);
  await held.log('first line');
  await held.log('second line');
  assert.deepStrictEqual(await queue.getJobLogs(held.id), { logs: ['first line', 'second line'], count: 2 });
  await held.updateData({ a: 7, b: 8 });
  await held.changeDelay(50000);
  assert.strictEqual(await queue.getDelayedCount(), 1);
  await held.promote();
  assert.deepStrictEqual(await held.waitUntilFinished(events, 10000), { sum: 15, name: 'add' });

  // removeOnComplete: the job's hash is gone once done; getJobs lists the kept ones, newest first.
  // Listen before adding: job.waitUntilFinished on such a job races its removal (it may poll a hash that is
  // already gone and reject with "Missing key", BullMQ issue #801, on Redis as on us), so wait for the event.
  const goneId = 'gone-' + process.pid;
  const goneDone = once(events, 'completed', (e) => e.jobId === goneId, 10000);
  const gone = await queue.add('add', { a: 0, b: 1 }, { removeOnComplete: true, jobId: goneId });
  await goneDone;
  assert.strictEqual(await queue.getJob(gone.id), undefined);
  const listed = await queue.getJobs(['completed'], 0, 2, false);
  assert.strictEqual(listed.length, 3);
  assert.ok(listed.every((j) => j.finishedOn > 0));

  // A job scheduler repeats a job every 150 ms until removed.
  const repeated = [];
  const onRep = (e) => repeated.push(e.jobId);
  events.on('completed', onRep);
  await queue.upsertJobScheduler('tick', { every: 150 }, { name: 'add', data: { a: 1, b: 0 } });
  const until = Date.now() + 5000;
  while (repeated.filter((id) => String(id).startsWith('repeat:')).length < 2 && Date.now() < until) await sleep(50);
  await queue.removeJobScheduler('tick');
  events.off('completed', onRep);
  assert.ok(repeated.filter((id) => String(id).startsWith('repeat:')).length >= 2, JSON.stringify(repeated));
  assert.strictEqual((await queue.getJobSchedulers()).length, 0);
  await sleep(300); // let a scheduled iteration already in flight finish
  await queue.clean(0, 1000, 'delayed');

  // clean() removes completed jobs; retryJobs() moves failed ones back to wait.
  const cleaned = await queue.clean(0, 1000, 'completed');
  assert.ok(cleaned.length >= 25, String(cleaned.length));
  await queue.retryJobs({ state: 'failed' });
  await assert.rejects(f.waitUntilFinished(events, 10000), /boom/);

  // A rate-limited worker with metrics: 4 jobs at 2 per 400 ms take at least one window.
  const rlName = name + '-rl';
  const rlQueue = new Queue(rlName, { connection });
  const rlEvents = new QueueEvents(rlName, { connection });
  await rlEvents.waitUntilReady();
  const rlWorker = new Worker(rlName, async (j) => j.data.i, {
    connection,
    limiter: { max: 2, duration: 400 },
    metrics: { maxDataPoints: 60 },
  });
  const r0 = Date.now();
  const rl = await rlQueue.addBulk([0, 1, 2, 3].map((i) => ({ name: 'rl', data: { i } })));
  assert.deepStrictEqual(await Promise.all(rl.map((j) => j.waitUntilFinished(rlEvents, 10000))), [0, 1, 2, 3]);
  assert.ok(Date.now() - r0 >= 350, `rate limited jobs took ${Date.now() - r0} ms`);
  assert.strictEqual((await rlQueue.getMetrics('completed')).meta.count, 4);
  await rlWorker.close();
  await rlEvents.close();
  await rlQueue.obliterate({ force: true });
  await rlQueue.close();

  const counts = await queue.getJobCounts('completed', 'failed', 'delayed', 'wait', 'active');
  assert.deepStrictEqual(counts, { completed: 0, failed: 1, delayed: 0, wait: 0, active: 0 });

  await flow.close();
  await flowWorker.close();
  await flowEvents.close();
  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await new Queue(flowWorkerName, { connection }).obliterate({ force: true });
  await queue.close();
  console.log('bullmq: Queue, Worker, delayed job, retries, QueueEvents, flow OK');
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
