//! One connection: read, decode every complete request in the buffer, execute each, and send the
//! replies of the whole batch in one write. Under appendfsync always the batch's replies leave only
//! once the AOF records of its writes are durable. Mirrors the client half of Redis's `networking.c`.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::pin::Pin;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::net::TcpStream;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

use crate::cmd::{Client, Ctx, execute};
use crate::error::Error;
use crate::resp::{Decoded, Frame, RequestDecoder};
use crate::state::{ClientInfo, Shared, Stats};
use crate::util::now_ms;
use crate::{verbose, warning};

const READ_CHUNK_BYTES: usize = 16 * 1024;
/// A new connection's read buffer: most clients send small requests (a subscriber sends one), so it
/// starts small and doubles up to [`READ_CHUNK_BYTES`] as reads fill it (see [`make_room`]).
const FIRST_READ_BYTES: usize = 1024;
/// Buffers left larger than this by one big request or reply are given back once empty (Redis
/// trims an idle client's query buffer and frees its reply list once written).
const KEEP_BUFFER_BYTES: usize = 4 * READ_CHUNK_BYTES;
/// Replies are flushed mid-batch once this much output is pending.
const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;

/// The reply span of one write command in the output buffer, and its AOF sequence number.
struct PendingWrite {
    start: usize,
    end: usize,
}

/// How long a shutting-down server waits for a client to take its last replies.
const SHUTDOWN_WRITE_GRACE: Duration = Duration::from_secs(3);
/// How often an idle connection re-reads `timeout` when none is set (CONFIG SET may set one).
const IDLE_RECHECK: Duration = Duration::from_secs(10);

/// Why a connection is closed by the server (logged as Redis logs it).
enum Close {
    /// The peer went away, QUIT, a protocol error, or shutdown: nothing to log.
    Quiet,
    Idle,
    QueryBuffer(usize),
    OutputBuffer,
    /// Not closing: the connection goes on on worker runtime `.0` (see `workers`).
    Move(usize),
}

/// Serve one client until it disconnects, QUITs, sends a protocol error, breaks a limit, or the
/// server shuts down (after finishing the batch it is executing).
/// `stream` is `Err` when the socket could not be registered with its worker runtime's driver
/// (see `workers`): the client is forgotten as if it had gone.
pub async fn serve(shared: Arc<Shared>, stream: std::io::Result<TcpStream>, info: Arc<ClientInfo>) {
    let mut client = Client::new(info);
    let stream = match stream {
        Ok(stream) => stream,
        Err(e) => {
            warning!("Registering a client connection with its worker: {e}");
            return end(&shared, client, Close::Quiet);
        }
    };
    let _ = stream.set_nodelay(true);
    let (keepalive, auth) = {
        let cfg = shared.config();
        (cfg.tcp_keepalive_s, cfg.requirepass.is_empty())
    };
    if keepalive > 0 {
        let _ = crate::limits::set_keepalive(&stream, keepalive);
    }
    client.authenticated = auth;
    client.batches_stats = true;
    run(shared, Ok(stream), client).await
}

/// The connection's life on one worker runtime: until it closes, or moves to another runtime
/// between two batches (see `workers`; its whole state moves, the socket options stay with the
/// socket). Boxed: a moved connection's task is this function again. `Err`: the socket could not
/// move (the client is forgotten as if it had gone).
fn run(
    shared: Arc<Shared>,
    stream: std::io::Result<TcpStream>,
    mut client: Client,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                warning!("Moving a client connection to another worker: {e}");
                return end(&shared, client, Close::Quiet);
            }
        };
        // Polled by the read of every batch: the connection's own `Notify`, nothing shared (a
        // `notify_waiters` reaches it from its creation on, and the loop checks the shutdown flag
        // first: nothing is missed across a move).
        let closing_info = client.info.clone();
        let closing = closing_info.closing.notified();
        tokio::pin!(closing);
        let why = serve_loop(&shared, &mut stream, &mut client, closing.as_mut()).await;
        if let Close::Move(target) = why {
            crate::workers::move_to(target, stream, move |stream| run(shared, stream, client));
            return;
        }
        end(&shared, client, why);
    })
}

/// What a connection leaves behind when it closes, and its log line.
fn end(shared: &Shared, mut client: Client, mut why: Close) {
    let id = client.info.id;
    shared.monitor.commands.flush(&mut client.stats_pending);
    // Whatever the loop returned from, the wake-ups its last commands deferred go out (still on
    // the thread that ran them: no await since).
    count_direct_writes(shared, crate::pubsub::wake_deferred());
    shared.ks.tracking().commit_staged();
    if client.subs.sub.is_killed() {
        // Cut by `client-output-buffer-limit pubsub`, wherever the loop noticed it.
        why = Close::OutputBuffer;
    }
    if let Some(reg) = client.blocked.take() {
        shared.ks.pass_on(reg);
    }
    if client.monitoring {
        shared.monitors.remove(id);
    }
    match why {
        Close::Quiet => {}
        Close::Idle => verbose!("Closing idle client"),
        Close::QueryBuffer(n) => warning!(
            "Closing client that reached max query buffer length: id={id} addr={} qbuf={n} (qbuf initial bytes: ...)",
            client.info.addr
        ),
        Close::OutputBuffer => warning!(
            "Client id={id} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            client.info.addr
        ),
        Close::Move(_) => {}
    }
    shared.repl.forget(id);
    // A client redirecting its invalidations here finds the redirect broken from now on.
    client.info.tracking.mark_gone();
    shared.clients.unregister(id);
}

/// When an idle connection next checks `timeout`: when it would expire, and at least every
/// [`IDLE_RECHECK`] (CONFIG SET may set one meanwhile).
fn idle_check_at(last_read: Instant, idle_timeout_s: u64) -> Instant {
    let recheck = Instant::now() + IDLE_RECHECK;
    if idle_timeout_s > 0 { (last_read + Duration::from_secs(idle_timeout_s)).min(recheck) } else { recheck }
}

/// Prefetch `current`'s key (the first key of a request just decoded, see `resp::first_key`) and
/// those of the next pipelined requests in `rbuf` (see `resp::peek_keys` and `KeyMap::prefetch`):
/// how many requests of `rbuf` that covers (a lone request, or requests on one key, are left
/// alone: nothing to overlap their lookup with). Clients' batches and a replica's stream from its
/// primary (`repl::replica`) both use it.
pub(crate) fn prefetch_ahead(shared: &Shared, client: &Client, current: Option<&[u8]>, rbuf: &[u8]) -> usize {
    let mut keys: [&[u8]; crate::db::PREFETCH_MAX] = [&[]; crate::db::PREFETCH_MAX];
    let mut n = 0;
    if let Some(k) = current {
        keys[0] = k;
        n = 1;
    }
    let mut one_key = false;
    let walked = crate::resp::peek_keys(rbuf, crate::db::PREFETCH_MAX - n, |k| {
        if n == 0 || !crate::cmd::short_eq(keys[n - 1], k) {
            keys[n] = k;
            n += 1;
            return true;
        }
        // A pipeline on one key (LPUSH, HSET of redis-benchmark) has nothing to prefetch: its
        // first two requests on the same key stop the walk (a third of such a batch's parsing
        // went to walking it twice), and the next PREFETCH_MAX requests are taken as more of it.
        one_key = n == 1;
        !one_key
    });
    if n >= 2 {
        shared.ks.prefetch(client.db, &keys[..n]);
    }
    if one_key { crate::db::PREFETCH_MAX } else { walked }
}

/// The read loop. Per batch it touches nothing that other connections write: the limits are
/// atomic mirrors, the shutdown signal is this connection's own `Notify`, and the idle timer is
/// armed once and re-armed only when it fires (never per read).
async fn serve_loop(
    shared: &Shared,
    stream: &mut TcpStream,
    client: &mut Client,
    mut closing: Pin<&mut Notified<'_>>,
) -> Close {
    let mut rbuf = BytesMut::with_capacity(FIRST_READ_BYTES);
    // Allocated by the first reply (a subscriber's outbox is swapped in whole, see `drain_into`).
    let mut wbuf = BytesMut::new();
    let mut decoder = RequestDecoder::default();
    let mut writes: Vec<PendingWrite> = Vec::new();
    let mut last_read = Instant::now();
    let idle = tokio::time::sleep_until(idle_check_at(last_read, shared.conn_limits.load().idle_timeout_s));
    tokio::pin!(idle);
    // Where publishers leave this client's messages (see `pubsub`): polled only while subscribed.
    let sub = client.subs.sub.clone();
    let fd = stream.as_raw_fd();
    // Write out the batch's replies (after its records are durable when `$seq` says so); a client
    // whose socket failed is closed quietly.
    macro_rules! flush_or_close {
        ($seq:expr, $out_limit:expr) => {
            // The batch's calls are counted before its replies leave (see `cmd::Client::batches_stats`).
            shared.monitor.commands.flush(&mut client.stats_pending);
            if !flush(shared, stream, &mut wbuf, &mut writes, $seq, $out_limit, closing.as_mut(), &sub, &client.info)
                .await
            {
                return Close::Quiet;
            }
        };
    }
    loop {
        // SeqCst: pairs with `request_shutdown`, which sets the flag before notifying the
        // connections it finds registered (a connection registered later sees the flag here).
        if shared.shutdown_requested.load(std::sync::atomic::Ordering::SeqCst) {
            return Close::Quiet;
        }
        make_room(&mut rbuf);
        let subscribed = client.subs.total() > 0 || client.info.tracking.wants_pushes() || client.monitoring;
        // While it waits with everything written, publishers write its messages to the socket
        // themselves at the end of their batches; it stops that (dropping `direct`, under the
        // outbox lock) first thing whenever it wakes, before it writes or closes anything.
        let direct = subscribed.then(|| sub.idle(fd));
        // In this order, without tokio's random start (a random number per poll, 80 instructions
        // a request at pipeline 1): the connection's own close signal first (a client that keeps
        // its socket readable is closed at its next batch), then the socket, then a subscriber's
        // messages (a client that keeps sending waits for them at most tokio's cooperative budget,
        // 128 reads: its commands' replies carry them anyway, see `run_command`), and the idle
        // timer last (a read that is ready skips polling it: 60 instructions).
        tokio::select! {
            biased;
            _ = closing.as_mut() => return Close::Quiet,
            r = stream.read_buf(&mut rbuf) => {
                drop(direct);
                match r {
                    Ok(0) | Err(_) => return Close::Quiet,
                    Ok(n) => {
                        let n = n + read_more(stream, &mut rbuf, n);
                        Stats::add(&shared.stats.net_input_bytes, n as u64);
                        Stats::add(&shared.stats.reads_processed, 1);
                        note_query_buf(&client.info, &rbuf);
                        last_read = Instant::now();
                    }
                }
            }
            _ = sub.wake.notified(), if subscribed => {
                drop(direct);
                // Messages arrived while the client was busy, or more than its socket took.
                if sub.is_killed() {
                    return Close::OutputBuffer;
                }
                // A publisher wakes us once per batch of its (see `pubsub::defer_wakes`): the
                // whole batch's messages go out in this one write.
                sub.drain_into(&mut wbuf);
                let out_limit = shared.conn_limits.load().out_limit;
                flush_or_close!(0, out_limit);
                continue;
            }
            _ = idle.as_mut() => {
                drop(direct);
                let idle_timeout = shared.conn_limits.load().idle_timeout_s;
                if idle_timeout > 0 && last_read.elapsed() >= Duration::from_secs(idle_timeout) {
                    return Close::Idle;
                }
                idle.as_mut().reset(idle_check_at(last_read, idle_timeout));
                continue;
            }
        }
        let limits = shared.conn_limits.load();
        let (max_bulk, max_query, out_limit) = (limits.max_bulk, limits.max_query, limits.out_limit);
        let mut now = now_ms();
        let mut batch_seq = 0u64;
        let mut close = None;
        let pushed_before = crate::repl::feed::pushed_here();
        // Requests of this batch whose keys were prefetched and that have not run yet.
        let mut ahead = 0;
        loop {
            decoder.unauthenticated = !client.authenticated && crate::cmd::auth_required(shared);
            match decoder.decode(&mut rbuf, max_bulk) {
                Ok(Decoded::Command(argv)) => {
                    // A pipelined run's keys are prefetched together once its first request is
                    // decoded, that request's key with them; a lone request (pipeline 1: the
                    // buffer is empty now) walks nothing.
                    if ahead > 0 {
                        ahead -= 1;
                    } else if !rbuf.is_empty() && decoder.at_boundary() {
                        ahead = prefetch_ahead(shared, client, crate::resp::first_key(&argv), &rbuf);
                    }
                    let mut start = wbuf.len();
                    let mut seq = run_command(shared, client, now, &argv, &mut wbuf);
                    if let Some(takeover) = client.replica.take() {
                        // PSYNC/SYNC: this connection is a replica's link from now on.
                        if stream.write_all(&wbuf).await.is_err() {
                            return Close::Quiet;
                        }
                        wbuf.clear();
                        crate::repl::primary::serve(shared, stream, takeover, rbuf.split(), closing.as_mut()).await;
                        return Close::Quiet;
                    }
                    // A blocking command that found nothing, or a command a CLIENT PAUSE covers:
                    // send what the batch produced so far, wait (for a push or the timeout, or for
                    // the pause to end), run it again. Later commands wait (as in Redis).
                    loop {
                        let req = client.block.take();
                        if req.is_none() && !client.postponed {
                            break;
                        }
                        client.postponed = false;
                        batch_seq = batch_seq.max(seq);
                        flush_or_close!(batch_seq, out_limit);
                        batch_seq = 0;
                        // While blocked, CLIENT LIST shows what is left to parse (Redis: qbuf=0).
                        note_query_buf(&client.info, &rbuf);
                        client.info.blocked.store(true, std::sync::atomic::Ordering::Relaxed);
                        let wake = match &req {
                            Some(req) => {
                                wait_blocked(shared, stream, &mut rbuf, req, &client.info, closing.as_mut(), max_query)
                                    .await
                            }
                            None => wait_paused(shared, stream, &mut rbuf, closing.as_mut(), max_query).await,
                        };
                        client.info.blocked.store(false, std::sync::atomic::Ordering::Relaxed);
                        match wake {
                            Wake::Woken => {}
                            Wake::TimedOut => client.block_timed_out = true,
                            Wake::Unblocked(reason) => {
                                client.block_timed_out = true;
                                client.unblocked = Some(reason);
                            }
                            Wake::Gone => return Close::Quiet,
                        }
                        now = now_ms();
                        start = wbuf.len();
                        seq = run_command(shared, client, now, &argv, &mut wbuf);
                        client.block_timed_out = false;
                        client.unblocked = None;
                    }
                    decoder.recycle(argv);
                    if seq > 0 {
                        batch_seq = batch_seq.max(seq);
                        writes.push(PendingWrite { start, end: wbuf.len() });
                    }
                    if out_limit.0 > 0 && wbuf.len() as u64 > out_limit.0 {
                        // Redis closes such a client without sending what it had pending; the
                        // commands already run keep their effects (and their AOF records).
                        return Close::OutputBuffer;
                    }
                    if client.close_after_reply {
                        close = Some(Close::Quiet);
                        break;
                    }
                    if wbuf.len() >= OUTPUT_FLUSH_BYTES {
                        flush_or_close!(batch_seq, out_limit);
                        batch_seq = 0;
                    }
                }
                Ok(Decoded::Incomplete) => break,
                Err(e) => {
                    Frame::Error(Bytes::from(e.reply_text())).encode(&mut wbuf, client.resp);
                    close = Some(Close::Quiet);
                    break;
                }
            }
        }
        note_query_buf(&client.info, &rbuf);
        client.info.argv_mem.store(0, Relaxed);
        // BCAST invalidations of the keys this batch modified (Redis: once per event loop turn).
        shared.ks.tracking().commit_staged();
        shared.ks.tracking().broadcast();
        if client.info.tracking.is_on() {
            sub.drain_into(&mut wbuf);
        }
        if sub.is_killed() {
            return Close::OutputBuffer;
        }
        if rbuf.len() > max_query {
            return Close::QueryBuffer(rbuf.len());
        }
        flush_or_close!(batch_seq, out_limit);
        if let Some(why) = close {
            return why;
        }
        // A batch that wrote, while a replica applies far behind: wait for it (see `repl::flow`).
        let feed = shared.ks.repl_feed();
        if feed.flow.congested() && crate::repl::feed::pushed_here() != pushed_before {
            feed.flow.wait().await;
        }
        // A big request or reply (SUBSCRIBE of 100k channels, a huge LRANGE) leaves its buffers
        // large: give them back rather than hold them for the connection's lifetime.
        if rbuf.is_empty() && rbuf.capacity() > KEEP_BUFFER_BYTES {
            rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
        }
        if wbuf.capacity() > KEEP_BUFFER_BYTES {
            wbuf = BytesMut::new();
        }
        // Between batches, with nothing half read, nothing waiting on it and nothing pushed to it:
        // to the worker runtime it belongs on now, when that changed (see `workers`).
        if rbuf.is_empty()
            && decoder.at_boundary()
            && let Some(target) = crate::workers::wanted(client.info.id)
            && client.blocked.is_none()
            && client.subs.total() == 0
            && !client.monitoring
            && !client.info.tracking.wants_pushes()
        {
            return Close::Move(target);
        }
    }
}

/// A read that filled a still-small buffer: read on (without waiting) until [`READ_CHUNK_BYTES`]
/// were read in all, so a batch is what one 16 KB read takes, as in Redis, whatever the buffer's
/// size (a pipeline's keys under a BCAST prefix go out in one push). Returns the bytes added; an
/// end of stream or error is left for the next read to see.
fn read_more(stream: &TcpStream, rbuf: &mut BytesMut, mut got: usize) -> usize {
    let mut more = 0;
    while rbuf.len() == rbuf.capacity() && got < READ_CHUNK_BYTES {
        make_room(rbuf);
        let room = (rbuf.capacity() - rbuf.len()).min(READ_CHUNK_BYTES - got);
        let start = rbuf.len();
        rbuf.resize(start + room, 0);
        match try_read_short(stream, &mut rbuf[start..]) {
            Ok(m) if m > 0 => {
                rbuf.truncate(start + m);
                got += m;
                more += m;
            }
            _ => {
                rbuf.truncate(start);
                break;
            }
        }
    }
    more
}

/// `try_read`, except that a short read (fewer bytes than `buf` holds: the socket's queue was
/// empty when it returned) also clears the stream's read readiness, as the EAGAIN of the next read
/// would, so that the next read waits for epoll instead of spending a `recvfrom` that finds nothing
/// (a pipelined client sends its next batch only after our replies). tokio's `read_buf` does the
/// same after its own short reads (`PollEvented::poll_read`), `try_read` does not; nginx's
/// `ngx_unix_recv` does it under edge-triggered epoll. No wake-up is lost, as none is with an
/// EAGAIN: `try_io` notes the readiness's event tick BEFORE the read and clears it only if no
/// event arrived since, and bytes (or a FIN) that arrive after the read raise a new edge.
fn try_read_short(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    let room = buf.len();
    let mut got = 0;
    match stream.try_io(tokio::io::Interest::READABLE, || {
        got = stream.try_read(buf)?;
        if got > 0 && got < room { Err(std::io::ErrorKind::WouldBlock.into()) } else { Ok(got) }
    }) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        r => r,
    }
}

/// Room for the next read: a quarter of the buffer and at least [`FIRST_READ_BYTES`] (so that a
/// small pipelined batch, 16 LPUSHes are 576 bytes, arrives in one read, not split over the end
/// of the room its predecessor left: the `reserve` takes the buffer back from its start when the
/// batch's arguments are gone), the buffer doubling from [`FIRST_READ_BYTES`] until it holds a
/// whole chunk.
fn make_room(rbuf: &mut BytesMut) {
    let want = (rbuf.capacity() / 4).clamp(FIRST_READ_BYTES, READ_CHUNK_BYTES / 4);
    if rbuf.capacity() - rbuf.len() < want {
        rbuf.reserve(rbuf.capacity().clamp(FIRST_READ_BYTES, READ_CHUNK_BYTES));
    }
}

/// How a blocked client's wait ended.
enum Wake {
    /// Its waiter was signalled: a key may hold a list now.
    Woken,
    TimedOut,
    /// Ended by CLIENT UNBLOCK.
    Unblocked(crate::state::UnblockReason),
    /// Disconnected, over its query buffer limit, or the server is shutting down.
    Gone,
}

/// Wait, costing nothing meanwhile, until the blocked command's waiter is signalled or its
/// deadline passes. Requests that arrive meanwhile are read (and wait in the buffer), so a client
/// that disconnects is noticed at once and its registration dropped.
async fn wait_blocked(
    shared: &Shared,
    stream: &mut TcpStream,
    rbuf: &mut BytesMut,
    req: &crate::cmd::BlockRequest,
    info: &ClientInfo,
    closing: Pin<&mut Notified<'_>>,
    max_query: usize,
) -> Wake {
    let slot = || info.block_slot.lock().unwrap_or_else(|e| e.into_inner());
    slot().waiter = Some(req.waiter.clone());
    let wake = wait_waiter(shared, stream, rbuf, req, closing, max_query).await;
    let unblocked = {
        let mut slot = slot();
        slot.waiter = None;
        slot.unblocked.take()
    };
    match (wake, unblocked) {
        (Wake::Woken, Some(reason)) => Wake::Unblocked(reason),
        (wake, _) => wake,
    }
}

/// Wait for a CLIENT PAUSE to end (or change), reading what arrives meanwhile as
/// [`wait_blocked`] does.
async fn wait_paused(
    shared: &Shared,
    stream: &mut TcpStream,
    rbuf: &mut BytesMut,
    mut closing: Pin<&mut Notified<'_>>,
    max_query: usize,
) -> Wake {
    let wait = shared.pause.wait_change();
    tokio::pin!(wait);
    loop {
        make_room(rbuf);
        tokio::select! {
            _ = &mut wait => return Wake::Woken,
            _ = closing.as_mut() => return Wake::Gone,
            r = stream.read_buf(rbuf) => if !kept_input(shared, r, rbuf, max_query) {
                return Wake::Gone;
            },
        }
    }
}

/// What a waiting connection does with the bytes it reads meanwhile (pipelined commands, kept for
/// after the wait): counts them, and says whether the connection lives on (false: closed, failed, or
/// its query buffer is over `client-query-buffer-limit`).
fn kept_input(shared: &Shared, read: std::io::Result<usize>, rbuf: &BytesMut, max_query: usize) -> bool {
    match read {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            Stats::add(&shared.stats.net_input_bytes, n as u64);
            Stats::add(&shared.stats.reads_processed, 1);
            rbuf.len() <= max_query
        }
    }
}

/// [`wait_blocked`]'s wait itself.
async fn wait_waiter(
    shared: &Shared,
    stream: &mut TcpStream,
    rbuf: &mut BytesMut,
    req: &crate::cmd::BlockRequest,
    mut closing: Pin<&mut Notified<'_>>,
    max_query: usize,
) -> Wake {
    let wait = req.waiter.wait();
    tokio::pin!(wait);
    let deadline = req.deadline.map(Instant::from_std);
    let sleep = async move {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    loop {
        make_room(rbuf);
        tokio::select! {
            _ = &mut wait => return Wake::Woken,
            _ = &mut sleep => {
                // A pusher may have claimed it at this very moment: then its elements are coming.
                if req.waiter.cancel() {
                    return Wake::TimedOut;
                }
                wait.await;
                return Wake::Woken;
            }
            _ = closing.as_mut() => return Wake::Gone,
            r = stream.read_buf(rbuf) => if !kept_input(shared, r, rbuf, max_query) {
                return Wake::Gone;
            },
        }
    }
}

/// Publish the query buffer's fill for CLIENT LIST. Relaxed, as every CLIENT LIST field: a
/// snapshot that orders nothing.
fn note_query_buf(info: &ClientInfo, rbuf: &BytesMut) {
    info.query_buf.store(rbuf.len(), Relaxed);
    info.query_buf_free.store(rbuf.capacity() - rbuf.len(), Relaxed);
}

/// Execute one command, append its reply, and return the sequence number of its last AOF record.
fn run_command(shared: &Shared, client: &mut Client, now: u64, argv: &[Bytes], out: &mut BytesMut) -> u64 {
    // The subscribers its messages reach are woken when this batch's replies are flushed (every
    // await of the batch loop is in `flush`, which wakes them first), as Redis writes each
    // client's output once per event-loop turn.
    crate::pubsub::defer_wakes();
    // Its keys modified under BCAST prefixes go out with the rest of the batch's (one push per
    // prefix per batch, as Redis's per event-loop turn), committed at the same points.
    crate::tracking::stage_batch();
    client.info.argv_mem.store(argv.iter().map(|a| a.len()).sum(), Relaxed);
    if client.reply_mode == crate::cmd::ReplyMode::SkipNext {
        client.reply_mode = crate::cmd::ReplyMode::Skip;
    }
    let was_in_multi = client.tx.in_multi();
    if client.info.tracking.is_on() {
        // Keep the tracking table within `tracking-table-max-keys` (Redis: before each command;
        // the active-expiry tick does it too).
        shared.ks.tracking().limit_keys();
    }
    // A tracking or monitoring client: what arrived before this command began goes before its
    // reply; invalidations and MONITOR lines that arrive while it runs go after it (see below).
    let late = client.info.tracking.is_on() || client.monitoring;
    if late {
        client.subs.sub.drain_into(out);
        client.subs.sub.hold_late();
    }
    // A top-level command may write its reply into `out` itself (GET: see `Ctx::out`), when
    // nothing would skip or hold that reply.
    let direct = client.reply_mode == crate::cmd::ReplyMode::On && !was_in_multi;
    let mut ctx = Ctx::new(shared, client, now);
    ctx.out = Some(out);
    ctx.direct = direct;
    let frame = execute(&mut ctx, argv);
    let out = ctx.out.take().expect("the output buffer is given back");
    if was_in_multi || ctx.client.tx.in_multi() {
        let (n, bytes) = ctx.client.tx.queued_sizes().map_or((-1, 0), |(n, b)| (n as i64, b));
        ctx.client.info.multi.store(n, Relaxed);
        ctx.client.info.multi_mem.store(bytes, Relaxed);
    }
    // CLIENT REPLY OFF/SKIP: no reply (SKIP's own reply included; the skipped command's too).
    let quiet = match ctx.client.reply_mode {
        crate::cmd::ReplyMode::On => false,
        crate::cmd::ReplyMode::Off | crate::cmd::ReplyMode::SkipNext => true,
        crate::cmd::ReplyMode::Skip if ctx.client.block.is_some() || ctx.client.postponed => true,
        crate::cmd::ReplyMode::Skip => {
            ctx.client.reply_mode = crate::cmd::ReplyMode::On;
            true
        }
    };
    if std::mem::take(&mut ctx.client.skip_reply) || quiet {
        ctx.client.subs.sub.release_late();
        ctx.client.subs.sub.drain_into(out);
        return ctx.last_seq.get();
    }
    // Messages published while it ran (to itself, or keyspace events of its own write) come first,
    // as in Redis, where they are added to the client's output as they are published. The
    // invalidations and MONITOR lines that arrived while it ran come after the reply: an
    // invalidation that arrived while a read ran must follow the value it read (see `tracking`),
    // as its own writes' do in Redis (`tracking_pending_keys`); a monitor's line for its own
    // command comes after the reply too (Redis feeds it after the call).
    ctx.client.subs.sub.drain_into(out);
    // Encoding (and freeing) a huge reply is long work too (KEYS over a big database).
    let resp = ctx.client.resp;
    match &frame {
        Frame::Array(items) if items.len() >= crate::cmd::OFFLOAD_MIN_ITEMS => {
            crate::cmd::offload(items.len(), || frame.encode(&mut *out, resp))
        }
        _ => frame.encode(out, resp),
    }
    if late {
        ctx.client.subs.sub.release_late();
        ctx.client.subs.sub.drain_into(out);
    }
    ctx.last_seq.get()
}

/// Wait until the batch's AOF records are durable (appendfsync always), then write the replies.
/// If they cannot be made durable, the replies of the batch's writes become MISCONF errors: nothing
/// is acknowledged that is not on disk. Returns false when the connection is gone.
#[allow(clippy::too_many_arguments)] // the loop's own state, borrowed piecewise (no struct to thread through)
async fn flush(
    shared: &Shared,
    stream: &mut TcpStream,
    wbuf: &mut BytesMut,
    writes: &mut Vec<PendingWrite>,
    batch_seq: u64,
    out_limit: (u64, u64, u64),
    closing: Pin<&mut Notified<'_>>,
    sub: &crate::pubsub::Subscriber,
    info: &ClientInfo,
) -> bool {
    // Before any await: the wake-ups deferred by this batch's commands, and its staged BCAST keys,
    // are this thread's. Replies that need not wait for the AOF go out first (one non-blocking
    // write), then the messages for the subscribers this thread writes to itself.
    // (The batch's BCAST invalidations are committed before its replies leave, as before.)
    let waits_for_aof = batch_seq > 0 && shared.ks.aof().is_some();
    let mut sent = None;
    if waits_for_aof || wbuf.is_empty() {
        count_direct_writes(shared, crate::pubsub::wake_deferred());
        shared.ks.tracking().commit_staged();
    } else {
        shared.ks.tracking().commit_staged();
        count_direct_writes(shared, crate::pubsub::wake_deferred_around(|| sent = Some(stream.try_write(wbuf))));
    }
    if waits_for_aof && let Some(aof) = shared.ks.aof() {
        // everysec/no: copy the batch's records into the file ourselves when the writer is not at
        // it, rather than wake it and wait to be woken.
        aof.help_write();
        if let Err(e) = aof.wait_durable(batch_seq).await {
            let reason = match e {
                crate::aof::AofError::Poisoned(reason) => reason,
                other => other.to_string(),
            };
            *wbuf = replace_write_replies(wbuf, writes, &Error::Misconf(reason));
        }
    }
    writes.clear();
    if wbuf.is_empty() {
        return true;
    }
    Stats::add(&shared.stats.net_output_bytes, wbuf.len() as u64);
    Stats::add(&shared.stats.writes_processed, 1);
    // Most writes fit in the socket's buffer: one syscall now, none of the waits below (a
    // subscriber's connection writes once per publisher batch: this is most of its work).
    let written = match sent.unwrap_or_else(|| stream.try_write(wbuf)) {
        Ok(n) if n == wbuf.len() => {
            wbuf.clear();
            return true;
        }
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(_) => {
            wbuf.clear();
            return false;
        }
    };
    // A client that does not read stalls this write, and with it the reading of its requests: the
    // output it can make the server hold is this one batch (backpressure). Redis's soft limit
    // closes it once over `soft` bytes for `secs` seconds; a shutting-down server waits a little.
    let (_, soft, secs) = out_limit;
    let over_soft = soft > 0 && secs > 0 && wbuf.len() as u64 > soft;
    let soft_deadline = async move {
        if over_soft { tokio::time::sleep(Duration::from_secs(secs)).await } else { std::future::pending().await }
    };
    let shutting_down = shared.shutdown_requested.load(std::sync::atomic::Ordering::SeqCst);
    let shutdown_grace = async move {
        if !shutting_down {
            closing.await;
        }
        tokio::time::sleep(SHUTDOWN_WRITE_GRACE).await
    };
    let len = wbuf.len();
    // Messages being written still count against a subscriber's output limit; a subscriber cut
    // for it meanwhile stops waiting for its socket.
    sub.set_inflight(len - written);
    // CLIENT LIST's `obl`/`omem`: what waits for the socket (Relaxed, a snapshot).
    info.reply_pending.store(len - written, Relaxed);
    let ok = tokio::select! {
        r = stream.write_all(&wbuf[written..len]) => r.is_ok(),
        _ = soft_deadline => false,
        _ = shutdown_grace => false,
        _ = sub.kill.notified(), if sub.is_active() => false,
    };
    sub.set_inflight(0);
    info.reply_pending.store(0, Relaxed);
    wbuf.clear();
    ok
}

/// Count the writes publishers made to idle subscribers' sockets (see `pubsub::wake_deferred`).
fn count_direct_writes(shared: &Shared, (writes, bytes): (u64, u64)) {
    if writes > 0 {
        Stats::add(&shared.stats.writes_processed, writes);
        Stats::add(&shared.stats.net_output_bytes, bytes);
    }
}

/// Rebuild the output with every write command's reply replaced by the MISCONF error.
fn replace_write_replies(wbuf: &BytesMut, writes: &[PendingWrite], misconf: &Error) -> BytesMut {
    let mut out = BytesMut::with_capacity(wbuf.len());
    let mut pos = 0;
    for w in writes {
        out.extend_from_slice(&wbuf[pos..w.start]);
        misconf.to_frame().encode(&mut out, 2);
        pos = w.end;
    }
    out.extend_from_slice(&wbuf[pos..]);
    out
}
