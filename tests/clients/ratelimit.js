// Issue 15's node acceptance: rate-limiter-flexible's RateLimiterRedis on ioredis (its whole
// algorithm is one EVALSHA script) lets `points` requests through and rejects the next one.
//
//   prefix=$(mktemp -d)
//   npm install --prefix "$prefix" --no-audit --no-fund rate-limiter-flexible ioredis
//   NODE_PATH="$prefix/node_modules" node tests/clients/ratelimit.js PORT
//
// Exits non-zero on the first failure.
'use strict';
const assert = require('assert');
const Redis = require('ioredis');
const { RateLimiterRedis, RateLimiterRes } = require('rate-limiter-flexible');

const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: ratelimit.js PORT');
  process.exit(2);
}

async function rejects(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

async function main() {
  const client = new Redis({ host: '127.0.0.1', port, enableOfflineQueue: true, maxRetriesPerRequest: 1 });
  await client.flushall();
  const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: 'rl', points: 3, duration: 5 });

  // Three requests pass, the fourth is rejected with the time until the window ends.
  for (let left = 2; left >= 0; left--) {
    const res = await limiter.consume('alice');
    assert.strictEqual(res.remainingPoints, left);
    assert.ok(res.msBeforeNext > 0 && res.msBeforeNext <= 5000, String(res.msBeforeNext));
  }
  const over = await rejects(limiter.consume('alice'));
  assert.ok(over instanceof RateLimiterRes, String(over));
  assert.strictEqual(over.remainingPoints, 0);
  assert.strictEqual(over.consumedPoints, 4);
  assert.ok(over.msBeforeNext > 0 && over.msBeforeNext <= 5000);

  // The script's key: a counter with the window as its TTL.
  assert.strictEqual(await client.get('rl:alice'), '4');
  const ttl = await client.pttl('rl:alice');
  assert.ok(ttl > 0 && ttl <= 5000, String(ttl));

  // Other keys are independent; several points at once; get() reads the state.
  assert.strictEqual((await limiter.consume('bob', 2)).remainingPoints, 1);
  await rejects(limiter.consume('bob', 2));
  assert.strictEqual((await limiter.get('bob')).consumedPoints, 4);
  assert.strictEqual(await limiter.get('nobody'), null);

  // After SCRIPT FLUSH ioredis gets NOSCRIPT and falls back to EVAL: limits still hold.
  await client.script('FLUSH');
  await rejects(limiter.consume('alice'));
  assert.strictEqual((await limiter.consume('carol')).remainingPoints, 2);

  // The window expires: a one-second limiter lets requests through again.
  const fast = new RateLimiterRedis({ storeClient: client, keyPrefix: 'fast', points: 1, duration: 1 });
  await fast.consume('dave');
  await rejects(fast.consume('dave'));
  await new Promise((r) => setTimeout(r, 1200));
  assert.strictEqual((await fast.consume('dave')).remainingPoints, 0);

  // Concurrent requests: exactly `points` of them pass (the script is atomic).
  const burst = new RateLimiterRedis({ storeClient: client, keyPrefix: 'burst', points: 10, duration: 5 });
  const results = await Promise.allSettled(Array.from({ length: 25 }, () => burst.consume('eve')));
  assert.strictEqual(results.filter((r) => r.status === 'fulfilled').length, 10);
  assert.strictEqual(await client.get('burst:eve'), '25');

  client.disconnect();
  console.log('ratelimit: RateLimiterRedis (ioredis) OK');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
