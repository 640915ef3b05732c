//! Startup and the accept loop: load the AOF, open it, listen, spawn a task per connection, run the
//! active-expiry cycle, and shut down cleanly. Mirrors Redis's `server.c` main/initServer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;

use crate::aof::{Aof, AofConfig};
use crate::cmd::{Client, Ctx, execute};
use crate::config::Config;
use crate::state::Shared;
use crate::{notice, warning};

/// Most keys one active-expiry step removes before yielding.
const EXPIRE_CYCLE_BUDGET_KEYS: usize = 20_000;

/// While replaying, the map of the db being loaded is sized once for the keys the whole file
/// will likely hold, so that it does not resize (and copy every node) over and over: after the
/// first `AOF_PRESIZE_SAMPLE_RECORDS` records, the keys created so far per byte read, times the
/// file's length. A file of many writes to few keys (counters, queues) reserves next to nothing
/// (an oversized table would cost memory, and every FLUSHALL and SCAN walks it).
const AOF_PRESIZE_SAMPLE_RECORDS: u64 = 16 * 1024;
/// The most keys the presize assumes per byte of file (a small SET record is about 40-60 bytes).
const AOF_PRESIZE_MIN_BYTES_PER_KEY: u64 = 32;

/// The AOF settings derived from the configuration.
pub fn aof_config(cfg: &Config) -> AofConfig {
    AofConfig {
        dir: cfg.dir.clone(),
        filename: cfg.appendfilename.clone(),
        fsync: cfg.appendfsync,
        prealloc_bytes: cfg.aof_prealloc_bytes,
        load_truncated: cfg.aof_load_truncated,
        load_corrupt_prefix: false,
    }
}

/// Replay the AOF into the keyspace, then open it for appending. Errors are fatal at startup.
/// Whether startup loads a dataset (the AOF, or with `appendonly no` an RDB file that exists): the
/// keyspace is marked loading before the listener opens, so that no client is served the empty
/// keyspace (PING, DBSIZE, a write) in the moment before the load begins.
pub fn loads_at_start(cfg: &crate::config::Config) -> bool {
    cfg.appendonly || crate::rdb::persist::rdb_path(cfg).exists()
}

pub fn load_and_open_aof(shared: &Arc<Shared>) -> Result<(), String> {
    let cfg = shared.config().clone();
    if !cfg.appendonly {
        shared.ks.set_aof(Aof::disabled());
        // No AOF: the RDB file is the dataset, as Redis's loadDataFromDisk.
        return crate::rdb::persist::load_at_startup(shared);
    }
    let acfg = aof_config(&cfg);
    // A directory that redis-server 7.0 persisted (appendonlydir/ and its manifest) and no file of
    // ours yet: convert Redis's files into ours first (see aof::import).
    let redis_dir = cfg.dir.join(cfg.get("appenddirname").unwrap_or_else(|| "appendonlydir".into()));
    crate::aof::import::import_if_present(&acfg.path(), &redis_dir, &acfg.filename).map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    shared.ks.set_loading(true);
    notice!("Reading the append only file {}", acfg.filename);
    let info = shared.clients.register("loader".into(), String::new());
    let mut client = Client::new(info);
    let file_len = std::fs::metadata(acfg.path()).map_or(0, |m| m.len());
    // INFO's loading_* fields.
    crate::rdb::loading::start(file_len);
    let (mut records, mut bytes_read) = (0u64, 0u64);
    // Runs of plain SETs go in by batches (see aof::load's `PlainSets` for the rule).
    let mut sets = crate::aof::PlainSets::new();
    // An RDB preamble goes in through the RDB loader (in bulk); keys whose time passed are loaded
    // and removed after the load like any others (with their DEL logged), and the function
    // libraries are loaded before the commands after it run.
    let mut preamble = |r: &mut dyn std::io::Read| {
        // Counted as it is parsed (INFO's loading_loaded_bytes); the commands after it report
        // their offsets.
        let info = crate::rdb::load::load_into(&shared.ks, &cfg, &mut crate::rdb::loading::reader(&mut *r), 0)?;
        crate::rdb::persist::load_functions(shared, &info.functions).map_err(crate::rdb::RdbError::Corrupt)?;
        Ok(info)
    };
    let report = Aof::load_with_preamble(&acfg, &mut preamble, |db, argv: &[Bytes]| {
        if records < AOF_PRESIZE_SAMPLE_RECORDS {
            records += 1;
            // The record's length in RESP, near enough: `*N`, then `$len` + bytes per argument.
            bytes_read += argv.iter().map(|a| a.len() as u64 + 8).sum::<u64>() + 8;
            if records == AOF_PRESIZE_SAMPLE_RECORDS {
                sets.put(&shared.ks);
                let keys = shared.ks.db(db).len() as u64;
                let estimate =
                    (keys.saturating_mul(file_len) / bytes_read.max(1)).min(file_len / AOF_PRESIZE_MIN_BYTES_PER_KEY);
                shared.ks.db(db).reserve(estimate.saturating_sub(keys) as usize);
            }
        }
        if !client.tx.in_multi() && sets.offer(&shared.ks, db, argv) {
            return Ok(());
        }
        sets.put(&shared.ks);
        client.db = db;
        let mut ctx = Ctx::new(shared, &mut client, 0);
        match execute(&mut ctx, argv) {
            crate::resp::Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
            _ => Ok(()),
        }
    });
    sets.put(&shared.ks);
    shared.clients.unregister(client.id);
    let report = report.map_err(|e| format!("Bad file format reading the append only file: {e}"))?;
    // Keys whose time passed while the server was down are removed now (and logged once open).
    notice!(
        "DB loaded from append only file: {:.3} seconds ({} commands, {} bytes)",
        started.elapsed().as_secs_f64(),
        report.commands,
        report.bytes
    );
    let aof = Aof::open_loaded(acfg, &report).map_err(|e| format!("Can't open the append-only file: {e}"))?;
    shared.ks.set_aof(aof);
    shared.ks.set_loading(false);
    while shared.ks.expire_cycle(crate::util::now_ms(), EXPIRE_CYCLE_BUDGET_KEYS) > 0 {}
    if let Some(aof) = shared.ks.aof() {
        aof.help_write();
    }
    Ok(())
}

/// Start the active-expiry thread.
pub fn spawn_expiry_thread(shared: Arc<Shared>) {
    std::thread::Builder::new()
        .name("active-expire".into())
        .spawn(move || {
            let mut last_rewrite_check = std::time::Instant::now();
            loop {
                if last_rewrite_check.elapsed() >= Duration::from_secs(1) {
                    last_rewrite_check = std::time::Instant::now();
                    maybe_auto_rewrite(&shared);
                    crate::rdb::persist::cron(&shared);
                }
                let hz = shared.config().hz.max(1);
                // CLIENT PAUSE keeps the dataset constant: no active expiry meanwhile (Redis).
                let now = crate::util::now_ms();
                let removed =
                    if shared.pause.is_paused(now) { 0 } else { shared.ks.expire_cycle(now, EXPIRE_CYCLE_BUDGET_KEYS) };
                // Broadcasts for keys that expired, or that a writer left (Redis's cron does both).
                shared.ks.tracking().broadcast();
                shared.ks.tracking().limit_keys();
                if removed > 0
                    && let Some(aof) = shared.ks.aof()
                {
                    // Its DEL records: into the file now (the writer is not woken per record).
                    aof.help_write();
                }
                if removed < EXPIRE_CYCLE_BUDGET_KEYS {
                    std::thread::sleep(Duration::from_millis(1000 / hz as u64));
                }
            }
        })
        .expect("spawn active-expire thread");
}

/// Redis's automatic rewrite rule: once the AOF is larger than auto-aof-rewrite-min-size and has
/// grown by auto-aof-rewrite-percentage over its size after the last rewrite (or at startup).
pub fn maybe_auto_rewrite(shared: &Shared) {
    let Some(info) = shared.ks.aof().map(|a| a.info()) else { return };
    let (perc, min) = {
        let c = shared.config();
        (c.auto_aof_rewrite_percentage, c.auto_aof_rewrite_min_size)
    };
    if !info.aof_enabled || info.aof_rewrite_in_progress || perc == 0 || info.aof_current_size <= min {
        return;
    }
    let base = info.aof_base_size.max(1);
    let growth = (info.aof_current_size * 100 / base).saturating_sub(100);
    if growth >= perc {
        notice!("Starting automatic rewriting of AOF on {growth}% growth");
        if let Err(e) = crate::rdb::persist::start_aof_rewrite(shared) {
            warning!("Automatic AOF rewrite could not start: {e}");
        }
    }
}

/// Pending connections the kernel may queue per listener (capped by `net.core.somaxconn`). Larger
/// than Redis's tcp-backlog default of 511 so that a burst of connects is not dropped (and retried
/// a second later by the client) while the accept loop catches up.
const LISTEN_BACKLOG: u32 = 8192;

/// Log, once at startup, the parameters that were given a non-default value but whose feature does
/// not exist here yet (accepted so that a stock redis.conf loads; never silently honoured).
pub fn warn_inert_settings(cfg: &Config) {
    let inert = cfg.inert_settings();
    if !inert.is_empty() {
        warning!("These parameters are accepted but have no effect in flurrydb yet: {}", inert.join(", "));
    }
}

/// Bind every configured address. An address written `-addr` is optional, as in Redis: one that is
/// not available on this host is skipped.
pub fn bind(cfg: &Config) -> Result<Vec<TcpListener>, String> {
    let mut out = Vec::new();
    for addr in &cfg.bind {
        let optional = addr.starts_with('-');
        let addr = addr.trim_start_matches('-');
        let fail = |e: std::io::Error| {
            format!("Warning: Could not create server TCP listening socket {addr}:{}: {e}", cfg.port)
        };
        let mut last = std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address");
        let mut bound = None;
        for sa in std::net::ToSocketAddrs::to_socket_addrs(&(addr, cfg.port)).map_err(fail)? {
            match listen(sa) {
                Ok(l) => {
                    bound = Some(l);
                    break;
                }
                Err(e) => last = e,
            }
        }
        match bound {
            Some(l) => out.push(l),
            // Unavailable address or unsupported family (no IPv6), as Redis skips them; a port in use is fatal.
            None if optional
                && !matches!(last.kind(), std::io::ErrorKind::AddrInUse | std::io::ErrorKind::PermissionDenied) =>
            {
                notice!("Skipping optional bind address {addr}: {last}");
            }
            None => return Err(fail(last)),
        }
    }
    Ok(out)
}

fn listen(sa: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if sa.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    sock.set_reuseaddr(true)?;
    sock.bind(sa)?;
    sock.listen(LISTEN_BACKLOG)
}

/// Redis's reply to a non-loopback client of a server in protected mode, before closing it.
pub const PROTECTED_MODE_DENIED: &str = "-DENIED Redis is running in protected mode because protected mode is enabled \
and no password is set for the default user. In this mode connections are only accepted from the loopback interface. \
If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable \
protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis \
from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do \
so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by \
editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. \
3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a \
an authentication password for the default user. NOTE: You only need to do one of the above things in order for the \
server to start accepting connections from the outside.\r\n";

/// Reply to a new connection that exceeds maxclients, before closing it.
pub const MAX_CLIENTS_REACHED: &str = "-ERR max number of clients reached\r\n";

/// Whether a client at `peer` is refused: protected mode is on, no password is set, and the
/// client does not come from the loopback interface.
pub fn protected_mode_refuses(cfg: &Config, peer: std::net::IpAddr) -> bool {
    cfg.protected_mode && cfg.requirepass.is_empty() && !peer.to_canonical().is_loopback()
}

/// Send `text` to a refused client and close it, without holding up the accept loop.
fn refuse(mut stream: tokio::net::TcpStream, text: &'static str) {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(text.as_bytes())).await;
    });
}

/// Accept connections on every listener (clients get -LOADING until the AOF is loaded) until the
/// server shuts down. Connections beyond maxclients, and non-loopback ones in protected mode, get
/// Redis's error and are closed.
pub fn start_accepting(shared: &Arc<Shared>, listeners: Vec<TcpListener>) {
    let generation = Arc::new(tokio::sync::watch::Sender::new(0u64));
    spawn_accept_loops(shared, listeners, &generation);
    // CONFIG SET port/bind: listen anew first (a failure keeps the old listeners), then retire the
    // old accept loops by moving to the next generation.
    let weak = Arc::downgrade(shared);
    let _ = shared.rebind.set(Box::new(move |cfg: &Config| {
        let Some(shared) = weak.upgrade() else { return Err("shutting down".into()) };
        let listeners = bind(cfg)?;
        generation.send_modify(|g| *g += 1);
        spawn_accept_loops(&shared, listeners, &generation);
        notice!("Listening on port {} ({})", cfg.port, cfg.bind.join(" "));
        Ok(())
    }));
}

/// One accept loop per listener, until shutdown or until `generation` moves on (a rebind).
fn spawn_accept_loops(shared: &Arc<Shared>, listeners: Vec<TcpListener>, generation: &tokio::sync::watch::Sender<u64>) {
    for l in listeners {
        let shared = shared.clone();
        let mut shutdown = shared.shutdown_watch.subscribe();
        let mut rebound = generation.subscribe();
        let mine = *rebound.borrow_and_update();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = l.accept() => a,
                    _ = shutdown.wait_for(|v| *v) => return,
                    _ = rebound.wait_for(|g| *g != mine) => return,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors (EMFILE) and the like: back off instead of spinning.
                        warning!("Accepting client connection: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                crate::state::Stats::add(&shared.stats.connections_received, 1);
                let (maxclients, protected) = {
                    let cfg = shared.config();
                    (cfg.maxclients, protected_mode_refuses(&cfg, peer.ip()))
                };
                if protected {
                    refuse(stream, PROTECTED_MODE_DENIED);
                    continue;
                }
                if shared.clients.count() >= maxclients {
                    crate::state::Stats::add(&shared.stats.rejected_connections, 1);
                    refuse(stream, MAX_CLIENTS_REACHED);
                    continue;
                }
                let laddr = stream.local_addr().map(|a| a.to_string()).unwrap_or_default();
                let info = shared.clients.register(peer.to_string(), laddr);
                let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
                info.fd.store(i64::from(fd), std::sync::atomic::Ordering::Relaxed);
                let shared = shared.clone();
                crate::workers::place(info.id, stream, move |stream| crate::connection::serve(shared, stream, info));
            }
        });
    }
}

/// Wait for SHUTDOWN, SIGTERM or SIGINT, then tell every connection and accept loop to stop.
pub async fn wait_for_shutdown(shared: &Shared) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    loop {
        let notified = shared.shutdown_notify.notified();
        if shared.shutdown_requested.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        tokio::select! {
            _ = term.recv() => { warning!("Received SIGTERM scheduling shutdown..."); break; }
            _ = int.recv() => { warning!("Received SIGINT scheduling shutdown..."); break; }
            _ = notified => {}
        }
    }
    shared.request_shutdown();
    // From here a second SIGINT is Redis's "You insist": exit at once, without the clean shutdown.
    tokio::spawn(async move {
        if int.recv().await.is_some() {
            warning!("You insist... exiting now.");
            std::process::exit(1);
        }
    });
}

/// Wait (at most `grace`) until every connection has finished its batch and closed.
pub async fn drain_connections(shared: &Shared, grace: Duration) {
    let deadline = tokio::time::Instant::now() + grace;
    while shared.clients.count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let left = shared.clients.count();
    if left > 0 {
        warning!("{left} clients still connected at shutdown; closing them");
    }
}

/// Write the process id to `pidfile`, if one is set, as Redis does (`createPidFile`): a file that
/// cannot be written is a warning, not a reason to stop.
pub fn write_pidfile(cfg: &Config) {
    let Some(path) = cfg.get("pidfile").filter(|p| !p.is_empty()) else { return };
    if let Err(e) = std::fs::write(&path, format!("{}\n", std::process::id())) {
        warning!("Failed to write PID file: {}", crate::util::os_error_text(&e));
    }
}

/// Remove the pid file at shutdown (Redis's `prepareForShutdown`).
fn remove_pidfile(shared: &Shared) {
    let path = shared.config().get("pidfile").filter(|p| !p.is_empty());
    if let Some(path) = path {
        notice!("Removing the pid file.");
        let _ = std::fs::remove_file(path);
    }
}

/// Flush and trim the AOF. Called once, after accepting stopped; the process exits right after.
///
/// Connections that outlived the drain, and the active-expiry thread, may still be writing: the AOF
/// is closed with every key stripe held, and the stripes are never released, so no write can apply
/// (and be acknowledged) after the file's final flush. Found by the loom model
/// `writer::write_racing_shutdown_is_in_the_file`.
pub fn shutdown(shared: &Shared) {
    notice!("User requested shutdown...");
    if shared.ks.aof().is_some_and(|a| a.enabled()) {
        notice!("Calling fsync() on the AOF file.");
    }
    // A replica's primary stream stays out too (taken before the stripes, as every holder of
    // both): the final RDB records the offset its data stands for.
    let apply = shared.repl.apply_lock.lock().unwrap_or_else(|e| e.into_inner());
    let seq = std::cell::Cell::new(0);
    let (held, result) = shared.ks.close_aof(&seq);
    if let Err(e) = result {
        warning!("Error flushing the AOF at shutdown: {e:?}");
    }
    // The final RDB save, every stripe still held: the file holds every acknowledged write.
    let saved = crate::rdb::persist::shutdown_save(shared, shared.rdb.shutdown_mode());
    std::mem::forget(held);
    std::mem::forget(apply);
    if !saved {
        remove_pidfile(shared);
        std::process::exit(1);
    }
    remove_pidfile(shared);
    notice!("Redis is now ready to exit, bye bye...");
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn a_dump_file_or_the_aof_makes_startup_a_load() {
        let dir = std::env::temp_dir().join(format!("flurrydb-loads-at-start-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = crate::config::Config { dir: dir.clone(), appendonly: false, ..Default::default() };
        assert!(!loads_at_start(&cfg), "no file, no AOF");
        std::fs::write(crate::rdb::persist::rdb_path(&cfg), b"REDIS0010").unwrap();
        assert!(loads_at_start(&cfg), "dump.rdb present");
        std::fs::remove_file(crate::rdb::persist::rdb_path(&cfg)).unwrap();
        cfg.appendonly = true;
        assert!(loads_at_start(&cfg), "appendonly yes");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
