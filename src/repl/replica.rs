//! The replica's side: the link to our primary (Redis's `connectWithMaster`, `syncWithMaster`,
//! `readSyncBulkPayload` and the master client). One task per `REPLICAOF`; it stops when a later
//! `REPLICAOF` bumps the generation.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{LinkState, Master, config_u64, lock, unix_now};
use crate::cmd::{Client, Ctx, execute, is_opt};
use crate::resp::{Decoded, Frame, RequestDecoder};
use crate::state::Shared;

std::thread_local! {
    static APPLYING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is running a command of our primary's (no READONLY, no MASTERDOWN).
pub fn applying() -> bool {
    APPLYING.with(|a| a.get())
}

/// Run `f` as our primary's command.
pub fn as_primary<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            APPLYING.with(|a| a.set(false));
        }
    }
    APPLYING.with(|a| a.set(true));
    let _reset = Reset;
    f()
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn stale(shared: &Shared, generation: u64) -> bool {
    shared.repl.generation.load(Ordering::SeqCst) != generation
}

/// The link task: connect, sync, stream; on failure wait a second and again, until REPLICAOF
/// changes.
pub async fn run(shared: Arc<Shared>, generation: u64) {
    loop {
        if stale(&shared, generation) {
            return;
        }
        let Some(m) = lock(&shared.repl.master).clone() else { return };
        shared.repl.link().state = LinkState::Connecting;
        crate::notice!("Connecting to MASTER {}:{}", m.host, m.port);
        let result = link_once(&shared, generation, &m).await;
        if stale(&shared, generation) {
            return;
        }
        if let Err(e) = &result
            && super::failover::phase(&shared) == super::failover::Phase::InProgress
        {
            // The target could not be reached (or failed the handshake): stay a primary.
            super::failover::abort(&shared, e);
            return;
        }
        {
            let mut l = shared.repl.link();
            if l.state == LinkState::Connected {
                l.down_since = unix_now();
            }
            l.state = LinkState::Connect;
        }
        match result {
            Ok(()) => crate::notice!("Connection with master lost."),
            Err(e) => crate::warning!("Error condition on socket for SYNC: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    async fn send(&mut self, argv: &[&[u8]]) -> Result<(), String> {
        let mut out = Vec::new();
        crate::aof::encode_command(&mut out, argv);
        self.stream.write_all(&out).await.map_err(|e| e.to_string())
    }

    /// One reply line (without CRLF), skipping the empty lines a primary sends to keep us alive.
    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(i + 1);
                let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
                if text.is_empty() {
                    continue;
                }
                return Ok(text);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<usize, String> {
        self.buf.reserve(64 * 1024);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT * 6, self.stream.read_buf(&mut self.buf)).await {
            Err(_) => Err("Timeout connecting to the MASTER...".into()),
            Ok(Ok(0)) => Err("connection closed".into()),
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(e.to_string()),
        }
    }

    async fn command(&mut self, argv: &[&[u8]]) -> Result<String, String> {
        self.send(argv).await?;
        self.line().await
    }
}

async fn link_once(shared: &Arc<Shared>, generation: u64, m: &Master) -> Result<(), String> {
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect((m.host.as_str(), m.port)))
        .await
        .map_err(|_| "connect timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    crate::notice!("MASTER <-> REPLICA sync started");
    shared.repl.link().state = LinkState::Handshake;
    let mut c = Conn { stream, buf: BytesMut::new() };
    let pong = c.command(&[b"PING"]).await?;
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        return Err(format!("Error reply to PING from master: '{pong}'"));
    }
    crate::notice!("Master replied to PING, replication can continue...");
    let (user, pass, announce_ip, port) = {
        let cfg = shared.config();
        (
            cfg.get("masteruser").unwrap_or_default(),
            cfg.get("masterauth").unwrap_or_default(),
            cfg.get("replica-announce-ip").unwrap_or_default(),
            cfg.get("replica-announce-port")
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .unwrap_or(cfg.port),
        )
    };
    if !pass.is_empty() {
        let reply = if user.is_empty() {
            c.command(&[b"AUTH", pass.as_bytes()]).await?
        } else {
            c.command(&[b"AUTH", user.as_bytes(), pass.as_bytes()]).await?
        };
        if reply.starts_with('-') {
            return Err(format!("Unable to AUTH to MASTER: {reply}"));
        }
    }
    let reply = c.command(&[b"REPLCONF", b"listening-port", port.to_string().as_bytes()]).await?;
    if reply.starts_with('-') {
        crate::notice!("(Non critical) Master does not understand REPLCONF listening-port: {reply}");
    }
    if !announce_ip.is_empty() {
        let reply = c.command(&[b"REPLCONF", b"ip-address", announce_ip.as_bytes()]).await?;
        if reply.starts_with('-') {
            crate::notice!("(Non critical) Master does not understand REPLCONF ip-address: {reply}");
        }
    }
    let reply = c.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]).await?;
    if reply.starts_with('-') {
        crate::notice!("(Non critical) Master does not understand REPLCONF capa: {reply}");
    }
    let cached = shared.repl.link().cached.clone();
    let (want_id, want_off) = match &cached {
        Some((id, off)) => (id.clone(), (off + 1).to_string()),
        None => ("?".to_string(), "-1".to_string()),
    };
    if cached.is_some() {
        crate::notice!("Trying a partial resynchronization (request {want_id}:{want_off}).");
    } else {
        crate::notice!("Partial resynchronization not possible (no cached master)");
    }
    let failing_over = super::failover::phase(shared) == super::failover::Phase::InProgress;
    let reply = if failing_over {
        c.command(&[b"PSYNC", want_id.as_bytes(), want_off.as_bytes(), b"FAILOVER"]).await?
    } else {
        c.command(&[b"PSYNC", want_id.as_bytes(), want_off.as_bytes()]).await?
    };
    if stale(shared, generation) {
        return Ok(());
    }
    if failing_over {
        // Writes resume once the target took over (or we are a primary again).
        let accepted = reply.starts_with("+FULLRESYNC") || reply.starts_with("+CONTINUE");
        super::failover::finish(shared, accepted, "Failover target rejected psync request");
        if !accepted {
            return Ok(());
        }
    }
    let feed = shared.ks.repl_feed();
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC") {
        let mut parts = rest.split_whitespace();
        let id = parts.next().unwrap_or_default().to_string();
        let offset: i64 = parts.next().and_then(|o| o.parse().ok()).unwrap_or(-1);
        crate::notice!("Full resync from master: {id}:{offset}");
        shared.repl.link().state = LinkState::Sync;
        let (payload, eof_mark) = read_payload(&mut c).await?;
        crate::notice!("MASTER <-> REPLICA sync: Flushing old data");
        let me = Arc::clone(shared);
        let size = payload.len();
        let synced_id = id.clone();
        // The data and the offset it stands for change together under `apply_lock` (a SAVE
        // meanwhile records one or the other, never the new data with the old offset).
        tokio::task::spawn_blocking(move || {
            let _apply = lock(&me.repl.apply_lock);
            super::rdb::load(&me, &payload)?;
            {
                let mut ids = me.repl.ids();
                ids.replid = synced_id.clone();
                ids.replid2 = "0".repeat(40);
                ids.second_offset = -1;
            }
            me.ks.repl_feed().reset(offset.max(0) as u64);
            let mut l = me.repl.link();
            l.offset = offset;
            l.read_offset = offset;
            l.cached = Some((synced_id, offset));
            // The primary starts the stream with a SELECT.
            l.stream_db = 0;
            Ok::<(), String>(())
        })
        .await
        .map_err(|e| e.to_string())??;
        crate::notice!("MASTER <-> REPLICA sync: Finished with success ({size} bytes)");
        super::disconnect_replicas(&shared.repl);
        if eof_mark {
            // A diskless primary starts the stream on our first ACK.
            c.send(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()]).await?;
        }
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let new_id = rest.trim().to_string();
        let (old_id, off) = cached.clone().unwrap_or_default();
        crate::notice!("Successful partial resynchronization with master.");
        if !new_id.is_empty() && new_id != old_id {
            {
                let mut ids = shared.repl.ids();
                ids.replid2 = old_id;
                ids.second_offset = off + 1;
                ids.replid = new_id.clone();
            }
            crate::warning!("Master replication ID changed to {new_id}");
            super::disconnect_replicas(&shared.repl);
        } else {
            shared.repl.ids().replid = old_id.clone();
        }
        {
            let mut l = shared.repl.link();
            l.offset = off;
            l.read_offset = off;
            if !new_id.is_empty() {
                l.cached = Some((new_id, off));
            }
        }
        // Our backlog goes on from where our data is (as a former primary, it is our own).
        if feed.backlog().end() != off as u64 {
            feed.reset(off as u64);
        }
    } else if reply.starts_with("-NOMASTERLINK") || reply.starts_with("-LOADING") {
        return Err(format!("Master is currently unable to PSYNC but should be in the future: {reply}"));
    } else {
        return Err(format!("Unexpected reply to PSYNC from master: {reply}"));
    }
    {
        let mut l = shared.repl.link();
        l.state = LinkState::Connected;
        l.last_io = unix_now();
    }
    crate::notice!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization or the load finished.");
    follow(shared, generation, c).await
}

/// The RDB after `+FULLRESYNC`: `$<len>` then the bytes, or `$EOF:<mark>` then the bytes and the
/// mark. Returns the payload and whether it came with a mark.
async fn read_payload(c: &mut Conn) -> Result<(Vec<u8>, bool), String> {
    let head = c.line().await?;
    if head.starts_with('-') {
        return Err(format!("MASTER aborted replication with an error: {head}"));
    }
    let Some(spec) = head.strip_prefix('$') else {
        return Err(format!("Bad protocol from MASTER, the first byte is not '$' (we received '{head}')"));
    };
    if let Some(mark) = spec.strip_prefix("EOF:") {
        let mark = mark.as_bytes().to_vec();
        if mark.len() != 40 {
            return Err("Bad EOF mark from MASTER".into());
        }
        let mut payload = Vec::new();
        loop {
            payload.extend_from_slice(&c.buf.split());
            if payload.len() >= 40 && payload[payload.len() - 40..] == mark[..] {
                payload.truncate(payload.len() - 40);
                return Ok((payload, true));
            }
            c.fill().await?;
        }
    }
    let len: usize = spec.parse().map_err(|_| format!("Bad bulk length from MASTER: {head}"))?;
    while c.buf.len() < len {
        c.fill().await?;
    }
    Ok((c.buf.split_to(len).to_vec(), false))
}

/// Apply the primary's stream: every complete command runs through the normal path as the
/// primary's client, the offset advances by its bytes, and the same bytes go to our backlog.
async fn follow(shared: &Arc<Shared>, generation: u64, mut c: Conn) -> Result<(), String> {
    let addr = c.stream.peer_addr().map_or_else(|_| String::new(), |a| a.to_string());
    let laddr = c.stream.local_addr().map_or_else(|_| String::new(), |a| a.to_string());
    let info = shared.clients.register(addr, laddr);
    let mut client = Client::new(info);
    client.authenticated = true;
    // The stream goes on in the database it had selected (a partial resync sends no SELECT).
    client.db = shared.repl.link().stream_db;
    client.info.db.store(client.db, Ordering::Relaxed);
    shared.repl.master_client.store(client.id, Ordering::Relaxed);
    let result = apply_loop(shared, generation, &mut c, &mut client).await;
    shared.repl.master_client.store(0, Ordering::Relaxed);
    shared.clients.unregister(client.id);
    result
}

async fn apply_loop(shared: &Arc<Shared>, generation: u64, c: &mut Conn, client: &mut Client) -> Result<(), String> {
    let mut decoder = RequestDecoder::default();
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    // Bytes read from the primary not yet part of a processed command: proxied once processed.
    let mut raw: Vec<u8> = c.buf.to_vec();
    let mut consumed_partial = 0usize;
    // Bytes processed but held back from the backlog and the offset: an open `MULTI` block (its
    // commands are queued, not applied). The offset only moves to the ends of whole commands
    // outside a block, so that a full sync served by this replica (its snapshot and offset taken
    // under `apply_lock`), its own RDB's offset and a PSYNC after a reconnection all stand at a
    // point where the keyspace holds all of a transaction or none of it: the stream from there
    // starts with the block's `MULTI`, never inside it.
    let mut held = 0usize;
    let feed = shared.ks.repl_feed();
    loop {
        let mut getack = false;
        if !c.buf.is_empty() {
            let max_bulk = shared.conn_limits.load().max_bulk;
            let _apply = lock(&shared.repl.apply_lock);
            let mut done = held;
            // Where the open block began (its MULTI's first byte), counted as `done` is.
            let mut block_at = (held > 0).then_some(0);
            // Commands whose keys were prefetched and that have not run yet: the stream is one
            // long pipeline, whose lookups' cache misses overlap as a client's batch's do.
            let mut ahead = 0;
            loop {
                if ahead == 0 && decoder.at_boundary() {
                    ahead = crate::connection::prefetch_ahead(shared, client, &c.buf);
                }
                let before = c.buf.len();
                let decoded = decoder.decode(&mut c.buf, max_bulk);
                consumed_partial += before - c.buf.len();
                match decoded {
                    Ok(Decoded::Command(argv)) => {
                        ahead = ahead.saturating_sub(1);
                        if argv.len() >= 2 && is_opt(&argv[0], "replconf") && is_opt(&argv[1], "getack") {
                            getack = true;
                        } else {
                            let was_in_block = client.tx.in_multi();
                            apply(shared, client, &argv);
                            match (was_in_block, client.tx.in_multi()) {
                                (false, true) => block_at = Some(done),
                                (true, false) => block_at = None,
                                _ => {}
                            }
                        }
                        done += consumed_partial;
                        consumed_partial = 0;
                    }
                    Ok(Decoded::Incomplete) => break,
                    Err(e) => return Err(format!("protocol error from master: {}", e.reply_text())),
                }
            }
            // An open block stays in `raw` until its EXEC is processed.
            let whole = block_at.unwrap_or(done);
            held = done - whole;
            let done = whole;
            if done > 0 {
                let bytes = Bytes::copy_from_slice(&raw[..done]);
                raw.drain(..done);
                feed.append_proxied(bytes);
                let mut l = shared.repl.link();
                l.offset += done as i64;
                l.stream_db = client.db;
                // What a reconnection asks PSYNC for: the primary's id and how far we applied.
                let offset = l.offset;
                if let Some(cached) = &mut l.cached {
                    cached.1 = offset;
                }
            }
        }
        if getack {
            send_ack(shared, c).await?;
        }
        if stale(shared, generation) {
            return Ok(());
        }
        tokio::select! {
            r = c.stream.read_buf(&mut c.buf) => match r {
                Ok(0) => return Ok(()),
                Err(e) => return Err(e.to_string()),
                Ok(n) => {
                    let len = c.buf.len();
                    raw.extend_from_slice(&c.buf[len - n..]);
                    let mut l = shared.repl.link();
                    l.read_offset += n as i64;
                    l.last_io = unix_now();
                    crate::state::Stats::add(&shared.stats.net_input_bytes, n as u64);
                }
            },
            _ = client.info.closing.notified() => return Ok(()),
            _ = ack.tick() => {
                send_ack(shared, c).await?;
                let timeout = config_u64(shared, "repl-timeout", 60);
                if unix_now().saturating_sub(shared.repl.link().last_io) > timeout {
                    return Err("MASTER timeout: no data nor PING received...".into());
                }
            }
        }
        if c.buf.capacity() - c.buf.len() < 16 * 1024 {
            c.buf.reserve(64 * 1024);
        }
    }
}

async fn send_ack(shared: &Shared, c: &mut Conn) -> Result<(), String> {
    let off = shared.repl.link().offset.max(0);
    c.send(&[b"REPLCONF", b"ACK", off.to_string().as_bytes()]).await
}

/// Run one command of the primary's (its reply goes nowhere).
fn apply(shared: &Shared, client: &mut Client, argv: &[Bytes]) {
    let mut ctx = Ctx::new(shared, client, crate::util::now_ms());
    let frame = as_primary(|| execute(&mut ctx, argv));
    client.block = None;
    client.postponed = false;
    client.skip_reply = false;
    if let Frame::Error(e) = frame {
        crate::warning!(
            "== CRITICAL == This replica is sending an error to its master: '{}' after processing the command '{}'",
            String::from_utf8_lossy(&e),
            String::from_utf8_lossy(&argv[0])
        );
    }
}
