// Issue 16's node acceptance: ioredis `psubscribe` receiving `__keyevent@0__:expired` for a key
// with a 100 ms TTL, and the Socket.IO Redis adapter carrying a broadcast emitted on server A to a
// client of server B (two Socket.IO servers in one process). Needs ioredis, socket.io,
// socket.io-client and @socket.io/redis-adapter on NODE_PATH (.ci/run installs them in a temp
// prefix). Usage: node pubsub_node.js PORT   (exit 1 on failure or after 20 s).
"use strict";
const Redis = require("ioredis");
const http = require("http");
const { Server } = require("socket.io");
const { io: connect } = require("socket.io-client");
const { createAdapter } = require("@socket.io/redis-adapter");

const port = Number(process.argv[2]);
const timer = setTimeout(() => {
  console.error("timed out");
  process.exit(1);
}, 20000);

function fail(msg) {
  console.error(msg);
  process.exit(1);
}

async function expiredEvent() {
  const r = new Redis(port);
  const sub = new Redis(port);
  await r.config("SET", "notify-keyspace-events", "Ex");
  const got = new Promise((resolve) => {
    sub.on("pmessage", (pattern, channel, message) => resolve([pattern, channel, message]));
  });
  await sub.psubscribe("__keyevent@0__:expired");
  const started = Date.now();
  await r.set("ttl-key", "v", "PX", 100);
  const [pattern, channel, message] = await got;
  if (pattern !== "__keyevent@0__:expired" || channel !== "__keyevent@0__:expired" || message !== "ttl-key") {
    fail(`unexpected event ${pattern} ${channel} ${message}`);
  }
  const ms = Date.now() - started;
  if (ms < 90) fail(`expired after ${ms} ms, before its TTL`);
  await r.config("SET", "notify-keyspace-events", "");
  console.log(`ioredis: __keyevent@0__:expired for ttl-key after ${ms} ms`);
  r.disconnect();
  sub.disconnect();
}

async function socketIoAdapter() {
  const clients = [];
  const make = () => {
    const pub = new Redis(port);
    const sub = pub.duplicate();
    clients.push(pub, sub);
    const httpServer = http.createServer();
    const io = new Server(httpServer, { adapter: createAdapter(pub, sub) });
    return new Promise((resolve) => httpServer.listen(0, "127.0.0.1", () => resolve({ io, httpServer })));
  };
  const a = await make();
  const b = await make();
  const client = connect(`http://127.0.0.1:${b.httpServer.address().port}`, { transports: ["websocket"] });
  await new Promise((resolve) => client.on("connect", resolve));
  // Both adapters have subscribed once server A sees server B's socket.
  for (let i = 0; i < 100; i++) {
    const sockets = await a.io.fetchSockets().catch(() => []);
    if (sockets.length === 1) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const received = new Promise((resolve) => client.on("hello", resolve));
  a.io.emit("hello", "from server A");
  const msg = await received;
  if (msg !== "from server A") fail(`client on B got ${msg}`);
  console.log("socket.io redis adapter: broadcast on server A reached a client of server B");
  client.close();
  a.io.close();
  b.io.close();
  clients.forEach((c) => c.disconnect());
}

(async () => {
  await expiredEvent();
  await socketIoAdapter();
  clearTimeout(timer);
  process.exit(0);
})().catch((e) => fail(e.stack || String(e)));
