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
    // `capa flow`: we acknowledge as we apply, and a flurrydb primary makes its writers wait when
    // we fall far behind (see `flow`); Redis ignores a capability it does not know.
    let reply = c.command(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2", b"capa", b"flow"]).await?;
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
        let head = read_payload_head(&mut c).await?;
        let eof_mark = matches!(head, PayloadHead::Eof(_));
        let load = load_kind(shared);
        crate::notice!(
            "MASTER <-> REPLICA sync: receiving {} from master {}",
            match head {
                PayloadHead::Len(n) => format!("{n} bytes"),
                PayloadHead::Eof(_) => "streamed RDB".into(),
            },
            if load == Load::Disk { "to disk" } else { "to parser" }
        );
        let size = match load {
            Load::Socket => load_from_socket(shared, &mut c, head, id.clone(), offset).await?,
            Load::Disk => load_from_file(shared, &mut c, head, id.clone(), offset).await?,
            Load::Swap => load_swapdb(shared, &mut c, head, id.clone(), offset).await?,
        };
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

/// How the RDB after `+FULLRESYNC` is framed: `$<len>` then the bytes, or `$EOF:<mark>` then the
/// bytes and the 40-byte mark (a diskless primary).
enum PayloadHead {
    Len(usize),
    Eof(Vec<u8>),
}

impl PayloadHead {
    fn mark(&self) -> Option<Vec<u8>> {
        match self {
            PayloadHead::Eof(m) => Some(m.clone()),
            PayloadHead::Len(_) => None,
        }
    }
}

async fn read_payload_head(c: &mut Conn) -> Result<PayloadHead, String> {
    let head = c.line().await?;
    if head.starts_with('-') {
        return Err(format!("MASTER aborted replication with an error: {head}"));
    }
    let Some(spec) = head.strip_prefix('$') else {
        return Err(format!("Bad protocol from MASTER, the first byte is not '$' (we received '{head}')"));
    };
    if let Some(mark) = spec.strip_prefix("EOF:") {
        if mark.len() != 40 {
            return Err("Bad EOF mark from MASTER".into());
        }
        return Ok(PayloadHead::Eof(mark.as_bytes().to_vec()));
    }
    spec.parse().map(PayloadHead::Len).map_err(|_| format!("Bad bulk length from MASTER: {head}"))
}

/// How a full sync's payload is loaded (`repl-diskless-load`, Redis's `useDisklessLoad`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Load {
    /// `disabled`, and `on-empty-db` with keys: received into a file first while the old data is
    /// served, then loaded from it.
    Disk,
    /// `on-empty-db` with an empty keyspace: parsed from the socket into the keyspace.
    Socket,
    /// `swapdb`: parsed from the socket into spare databases, swapped in at the end.
    Swap,
}

fn load_kind(shared: &Shared) -> Load {
    let mode = shared.config().get("repl-diskless-load").unwrap_or_default();
    match mode.as_str() {
        "swapdb" => Load::Swap,
        "on-empty-db" if (0..shared.ks.databases()).all(|d| shared.ks.db(d).is_empty()) => Load::Socket,
        _ => Load::Disk,
    }
}

/// After the payload loaded, under `apply_lock` with it: the primary's id and offset become ours
/// and the backlog starts there (the data and the offset it stands for change together: a SAVE
/// meanwhile records one or the other, never the new data with the old offset).
fn synced(shared: &Shared, synced_id: String, offset: i64) {
    {
        let mut ids = shared.repl.ids();
        ids.replid = synced_id.clone();
        ids.replid2 = "0".repeat(40);
        ids.second_offset = -1;
    }
    shared.ks.repl_feed().reset(offset.max(0) as u64);
    let mut l = shared.repl.link();
    l.offset = offset;
    l.read_offset = offset;
    l.cached = Some((synced_id, offset));
    // The primary starts the stream with a SELECT.
    l.stream_db = 0;
}

/// Disk-based load (Redis's default): the payload goes into `temp-<time>.<pid>.rdb` in `dir`
/// while the old data is still served, is fsynced and renamed over `dbfilename` (the replica's
/// RDB file is then its primary's snapshot, with its replication id and offset, as Redis's), then
/// loaded from there under `-LOADING`. Returns the payload's size.
async fn load_from_file(
    shared: &Arc<Shared>,
    c: &mut Conn,
    head: PayloadHead,
    synced_id: String,
    offset: i64,
) -> Result<usize, String> {
    use std::io::Write;
    let (path, dir) = {
        let cfg = shared.config();
        (crate::rdb::persist::rdb_path(&cfg), cfg.dir.clone())
    };
    let tmp = dir.join(format!("temp-{}.{}.rdb", unix_now(), std::process::id()));
    let received = async {
        let mut f = std::fs::File::create(&tmp)
            .map_err(|e| format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}"))?;
        let mut size = 0usize;
        let mut write = |f: &mut std::fs::File, b: &[u8]| {
            size += b.len();
            f.write_all(b).map_err(|e| format!("Write error writing to the DB on disk: {e}"))
        };
        match head {
            PayloadHead::Len(n) => {
                let mut left = n;
                while left > 0 {
                    if c.buf.is_empty() {
                        c.fill().await?;
                    }
                    let part = c.buf.split_to(left.min(c.buf.len()));
                    left -= part.len();
                    write(&mut f, &part)?;
                }
            }
            PayloadHead::Eof(mark) => {
                // The last 40 bytes received may be the mark: held back until more come.
                let mut pending = Vec::new();
                loop {
                    if c.buf.is_empty() {
                        c.fill().await?;
                    }
                    pending.extend_from_slice(&c.buf.split());
                    if pending.ends_with(&mark) {
                        pending.truncate(pending.len() - mark.len());
                        write(&mut f, &pending)?;
                        break;
                    }
                    if pending.len() > mark.len() {
                        let keep = pending.split_off(pending.len() - mark.len());
                        write(&mut f, &pending)?;
                        pending = keep;
                    }
                }
            }
        }
        f.sync_all().map_err(|e| format!("Failed trying to sync the temp DB to disk: {e}"))?;
        std::fs::rename(&tmp, &path).map_err(|e| {
            format!(
                "Failed trying to rename the temp DB into {} in MASTER <-> REPLICA synchronization: {e}",
                path.display()
            )
        })?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok::<usize, String>(size)
    }
    .await;
    let size = match received {
        Ok(size) => size,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    crate::notice!("MASTER <-> REPLICA sync: Flushing old data");
    let me = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let _apply = lock(&me.repl.apply_lock);
        let f = std::fs::File::open(&path).map_err(|e| e.to_string())?;
        let len = f.metadata().map_or(0, |m| m.len());
        super::rdb::load(&me, &mut std::io::BufReader::with_capacity(1 << 20, f), len)
            .map_err(|e| format!("Failed trying to load the MASTER synchronization DB from disk: {e}"))?;
        synced(&me, synced_id, offset);
        Ok::<(), String>(())
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(size)
}

/// A reader of what the link task forwards from the socket (the loader runs on a blocking
/// thread, the socket is the link task's).
struct Forwarded {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
    read: usize,
}

impl std::io::Read for Forwarded {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        self.read += n;
        Ok(n)
    }
}

/// Diskless load (`repl-diskless-load on-empty-db` with an empty keyspace): the keyspace is
/// `loading` (clients get `-LOADING`) while the RDB is parsed as it arrives, no file written;
/// with `$EOF:<mark>` the mark must follow the RDB's end (Redis's `readSyncBulkPayload`). A failed
/// load leaves the keyspace empty. Returns the payload's size.
async fn load_from_socket(
    shared: &Arc<Shared>,
    c: &mut Conn,
    head: PayloadHead,
    synced_id: String,
    offset: i64,
) -> Result<usize, String> {
    let me = Arc::clone(shared);
    let mark = head.mark();
    crate::notice!("MASTER <-> REPLICA sync: Flushing old data");
    forward_payload(c, head, move |input| {
        let _apply = lock(&me.repl.apply_lock);
        // A socket's payload: its length unknown (Redis's `startLoading(0, ...)`).
        let loaded = super::rdb::load(&me, input, 0)
            .map_err(|e| format!("Failed trying to load the MASTER synchronization DB from socket: {e}"))
            .and_then(|()| check_mark(input, mark));
        if let Err(e) = loaded {
            // Nothing half loaded stays (Redis's `emptyData` after a failed diskless load).
            let _ = super::rdb::flush(&me);
            return Err(e);
        }
        // As Redis's diskless load: one change since the last save (no RDB file was saved).
        crate::rdb::dirty::incr();
        synced(&me, synced_id, offset);
        Ok(input.read)
    })
    .await
}

/// `repl-diskless-load swapdb` (Redis's `disklessLoadInitTempDb` / `swapMainDbWithTempDb`): the RDB
/// is parsed from the socket into spare databases that no client sees while the old ones go on
/// being served: with a payload of our own replication id (the same history, a later point) as
/// `async_loading` (INFO `async_loading:1`, reads answered from the old data, SAVE/BGSAVE/... get
/// `-LOADING`), with another id under `loading` (`-LOADING`, as Redis). Complete (and its mark
/// checked), it replaces every database at once under every stripe (`WriteLock::swap_in_all`:
/// WATCHers dirtied, blocked clients served, tracking flushed), then the function libraries; a
/// failed or cut load drops the spares and leaves the old data as it was (the link retries).
/// Without enough spare maps (a flush still clearing them) it loads as `disabled`.
async fn load_swapdb(
    shared: &Arc<Shared>,
    c: &mut Conn,
    head: PayloadHead,
    synced_id: String,
    offset: i64,
) -> Result<usize, String> {
    let Some(maps) = shared.ks.take_spares() else {
        crate::notice!("MASTER <-> REPLICA sync: no spare databases for swapdb now, receiving to disk");
        return load_from_file(shared, c, head, synced_id, offset).await;
    };
    let async_load = shared.repl.ids().replid == synced_id;
    /// Ends the loading state however the load ends.
    struct Loading(Arc<Shared>, bool);
    impl Drop for Loading {
        fn drop(&mut self) {
            if self.1 {
                self.0.repl.async_loading.store(false, Ordering::SeqCst);
            } else {
                self.0.ks.set_loading(false);
            }
        }
    }
    crate::rdb::loading::start(0);
    if async_load {
        shared.repl.async_loading.store(true, Ordering::SeqCst);
    } else {
        shared.ks.set_loading(true);
    }
    let loading = Loading(Arc::clone(shared), async_load);
    let me = Arc::clone(shared);
    let mark = head.mark();
    forward_payload(c, head, move |input| {
        let cfg = me.config().clone();
        let targets: Vec<&crate::db::KeyMap> = maps.iter().map(|&p| me.ks.spare_map(p)).collect();
        let loaded = crate::rdb::load::load_into_maps(&targets, &cfg, &mut crate::rdb::loading::reader(&mut *input));
        let loaded = loaded
            .map_err(|e| format!("Failed trying to load the MASTER synchronization DB from socket: {e}"))
            .and_then(|info| check_mark(input, mark).map(|()| info));
        let info = match loaded {
            Ok(info) => info,
            Err(e) => {
                crate::notice!("MASTER <-> REPLICA sync: Discarding temporary DB in background");
                recycle_later(&me, maps);
                return Err(e);
            }
        };
        crate::notice!("Done loading RDB, keys loaded: {}.", info.keys);
        let _apply = lock(&me.repl.apply_lock);
        crate::notice!("MASTER <-> REPLICA sync: Swapping active DB with loaded DB");
        let old = {
            let seq = Cell::new(0);
            me.ks.write_all(0, &seq).swap_in_all(&maps)
        };
        let functions = super::rdb::replace_functions(&me, &info.functions);
        // As Redis's diskless load: one change since the last save.
        crate::rdb::dirty::incr();
        synced(&me, synced_id, offset);
        drop(_apply);
        drop(loading);
        crate::notice!("MASTER <-> REPLICA sync: Discarding old DB in background");
        recycle_later(&me, old);
        functions?;
        if me.ks.aof().is_some_and(|a| a.enabled()) {
            crate::rdb::persist::start_aof_rewrite(&me)
                .map_err(|e| format!("Failed to rewrite the AOF after the sync: {e}"))?;
        }
        Ok(input.read)
    })
    .await
}

/// Clear maps taken out of use (a discarded or replaced set of databases) on a thread of their
/// own, and give them back as spares.
fn recycle_later(shared: &Arc<Shared>, maps: Vec<usize>) {
    let me = Arc::clone(shared);
    std::thread::spawn(move || maps.into_iter().for_each(|p| me.ks.recycle(p)));
}

/// After a diskless RDB, the `$EOF:` mark (if the payload had one) must be the next bytes.
fn check_mark(input: &mut Forwarded, mark: Option<Vec<u8>>) -> Result<(), String> {
    use std::io::Read;
    if let Some(mark) = mark {
        let mut got = vec![0u8; mark.len()];
        if input.read_exact(&mut got).is_err() || got != mark {
            return Err("Replication stream EOF marker is broken".to_string());
        }
    }
    Ok(())
}

/// Run `load` on a blocking thread, reading the payload after `head` as this (the link) task
/// forwards it from the socket. The socket failing ends the input (the loader then fails on a
/// short RDB) and is reported once the loader has finished; the loader stopping early (a damaged
/// payload) ends the forwarding.
async fn forward_payload<T: Send + 'static>(
    c: &mut Conn,
    head: PayloadHead,
    load: impl FnOnce(&mut Forwarded) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let mut loader = tokio::task::spawn_blocking(move || load(&mut Forwarded { rx, cur: Bytes::new(), read: 0 }));
    let mut left = match head {
        PayloadHead::Len(n) => Some(n),
        PayloadHead::Eof(_) => None,
    };
    let failed = loop {
        if left == Some(0) {
            break None;
        }
        if !c.buf.is_empty() {
            let n = left.map_or(c.buf.len(), |l| l.min(c.buf.len()));
            if let Some(l) = &mut left {
                *l -= n;
            }
            let part = c.buf.split_to(n).freeze();
            if tx.send(part).await.is_err() {
                // The loader stopped reading: it is done or failed.
                break None;
            }
            continue;
        }
        tokio::select! {
            r = c.fill() => if let Err(e) = r { break Some(e) },
            r = &mut loader => {
                let r = r.map_err(|e| e.to_string())?;
                if r.is_ok() && left.is_some_and(|l| l > 0) {
                    return Err("the RDB ended before its announced length".into());
                }
                return r;
            }
        }
    };
    drop(tx);
    let r = loader.await.map_err(|e| e.to_string())?;
    match failed {
        Some(e) => r.and(Err(e)),
        None => r,
    }
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

/// Bytes of the primary's stream a replica applies before it lets the other tasks of its worker
/// (its clients) run.
const YIELD_AFTER_BYTES: usize = 64 * 1024;

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
    // Bytes read since this task last let the worker's other tasks run.
    let mut applied_turn = 0usize;
    // Bytes applied since the last ACK: one every `flow::ACK_BYTES` (see `flow`).
    let mut unacked = 0usize;
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
                    ahead = crate::connection::prefetch_ahead(shared, client, None, &c.buf);
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
                unacked += done;
            }
        }
        if getack || unacked >= super::flow::ACK_BYTES {
            unacked = 0;
            send_ack(shared, c).await?;
        }
        if stale(shared, generation) {
            return Ok(());
        }
        if applied_turn >= YIELD_AFTER_BYTES {
            // A primary that keeps the socket full would keep this task running for tokio's whole
            // budget (128 reads of up to 80 KB: 10 MB of stream, a few hundred ms) before the
            // clients queued on this worker are served; Redis serves them after every 16 KB read.
            applied_turn = 0;
            tokio::task::yield_now().await;
        }
        tokio::select! {
            r = c.stream.read_buf(&mut c.buf) => match r {
                Ok(0) => return Ok(()),
                Err(e) => return Err(e.to_string()),
                Ok(n) => {
                    let len = c.buf.len();
                    raw.extend_from_slice(&c.buf[len - n..]);
                    applied_turn += n;
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
