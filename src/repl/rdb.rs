//! The RDB payload of a full sync, both ways: the snapshot encoded for a replica, and a payload
//! from our primary loaded into the keyspace. The codec itself is `crate::rdb`'s.

use bytes::Bytes;

use crate::cmd::{Client, Ctx, execute};
use crate::rdb::{Aux, EncodeOpts, ReplInfo};
use crate::resp::Frame;
use crate::state::Shared;

/// What a full sync sends besides the keys: the function libraries, and the settings the values
/// are encoded by. Taken with the snapshot (under every stripe, as every change of the libraries).
pub struct Extras {
    pub functions: Vec<Bytes>,
    pub opts: EncodeOpts,
    pub checksum: bool,
    /// `rdb-key-save-delay` (µs per key; Redis's testing knob, which slows a sync's RDB too).
    pub key_save_delay_us: u64,
}

impl Extras {
    pub fn of(shared: &Shared) -> Extras {
        let functions = crate::script::function::rewrite_records(&shared.scripting)
            .into_iter()
            .filter_map(|r| r.last().cloned())
            .collect();
        let cfg = shared.config();
        let compress = cfg.get("rdbcompression").is_none_or(|v| v == "yes");
        let checksum = cfg.get("rdbchecksum").is_none_or(|v| v == "yes");
        let key_save_delay_us =
            cfg.get("rdb-key-save-delay").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0).max(0) as u64;
        Extras { functions, opts: EncodeOpts::from_config(&cfg, compress), checksum, key_save_delay_us }
    }
}

/// The snapshot (a frozen one, or a copy) as an RDB file, with `repl-id`/`repl-offset` as Redis
/// writes them for a replica, into any writer (a diskless sync streams it to the replica as it is
/// encoded).
pub fn encode_to(
    out: &mut impl std::io::Write,
    snapshot: &(impl crate::rdb::save::Keys + ?Sized),
    extras: Extras,
    replid: &str,
    offset: u64,
) -> Result<(), String> {
    let aux = Aux {
        used_mem: crate::memory::used_bytes(),
        repl: Some(ReplInfo { stream_db: 0, id: replid.to_string(), offset: offset as i64 }),
        functions: extras.functions,
        checksum: extras.checksum,
        opts: extras.opts,
        key_save_delay_us: extras.key_save_delay_us,
        ..Aux::default()
    };
    crate::rdb::write_rdb(out, snapshot, &aux).map_err(|e| e.to_string())
}

/// What the thread that serves a full sync's payload hands the replica's connection: chunks of
/// the RDB (one for a disk-style `$<len>` payload, many for a diskless one), then its end or why
/// it failed (a channel closed without either: the thread died, the payload is incomplete).
pub enum Chunk {
    Data(Vec<u8>),
    End,
    Failed(String),
}

/// Empty the keyspace and the function libraries (a diskless load that failed half way, as Redis's
/// `emptyData`).
pub fn flush(shared: &Shared) -> Result<(), String> {
    crate::rdb::dirty::uncounted(|| flush_uncounted(shared))
}

fn flush_uncounted(shared: &Shared) -> Result<(), String> {
    let info = shared.clients.register("master-sync".into(), String::new());
    let mut client = Client::new(info);
    let mut result = Ok(());
    for argv in [&[&b"FUNCTION"[..], b"FLUSH"][..], &[b"FLUSHALL"]] {
        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut ctx = Ctx::new(shared, &mut client, 0);
        if let Frame::Error(e) = super::replica::as_primary(|| execute(&mut ctx, &argv)) {
            result = Err(String::from_utf8_lossy(&e).into_owned());
        }
    }
    shared.clients.unregister(client.id);
    result
}

/// A writer that hands what it is given to an async task in chunks, waiting while that task is
/// [`STREAM_CHUNKS`] chunks behind (the encoder runs on its own thread; a replica that reads
/// slowly slows the encoder, it does not grow memory). Fails once the receiver is gone.
pub struct ChunkSender(pub tokio::sync::mpsc::Sender<Chunk>);

/// Chunks in flight between the encoder and the socket.
pub const STREAM_CHUNKS: usize = 8;

impl std::io::Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Chunk::Data(buf.to_vec()))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the replica went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Replace the function libraries with `libraries` (a loaded payload's, after
/// `repl-diskless-load swapdb` swapped its keys in).
pub fn replace_functions(shared: &Shared, libraries: &[Bytes]) -> Result<(), String> {
    crate::rdb::dirty::uncounted(|| replace_functions_uncounted(shared, libraries))
}

fn replace_functions_uncounted(shared: &Shared, libraries: &[Bytes]) -> Result<(), String> {
    let info = shared.clients.register("master-sync".into(), String::new());
    let mut client = Client::new(info);
    let mut result = Ok(());
    let flush: &[&[u8]] = &[b"FUNCTION", b"FLUSH"];
    let loads = libraries.iter().map(|code| vec![&b"FUNCTION"[..], b"LOAD", b"REPLACE", code]);
    for argv in std::iter::once(flush.to_vec()).chain(loads) {
        let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let mut ctx = Ctx::new(shared, &mut client, 0);
        if let Frame::Error(e) = super::replica::as_primary(|| execute(&mut ctx, &argv)) {
            result = Err(String::from_utf8_lossy(&e).into_owned());
            break;
        }
    }
    shared.clients.unregister(client.id);
    result
}

/// Replace the keyspace with the RDB `payload` (Redis's `readSyncBulkPayload`): clients get
/// `-LOADING` meanwhile; the old keys are flushed (WATCHers see it), the keys inserted, the function
/// libraries loaded; with the AOF on, a rewrite then puts the new dataset in the file (as Redis
/// restarts its AOF after a sync). `total_bytes`: the payload's length when known (a file's), for
/// INFO's loading_* fields.
pub fn load(shared: &Shared, payload: &mut impl std::io::Read, total_bytes: u64) -> Result<(), String> {
    let ks = &shared.ks;
    let info = shared.clients.register("master-sync".into(), String::new());
    let mut client = Client::new(info);
    crate::rdb::loading::start(total_bytes);
    let payload = &mut crate::rdb::loading::reader(payload);
    ks.set_loading(true);
    // The flush and the loads count no change since the last save (Redis's `readSyncBulkPayload`
    // counts one for a diskless load, its caller here).
    let result = crate::rdb::dirty::uncounted(|| -> Result<(), String> {
        let mut run = |argv: &[&[u8]]| -> Result<(), String> {
            let argv: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
            // now_ms 0: as the AOF loader, past the LOADING refusal.
            let mut ctx = Ctx::new(shared, &mut client, 0);
            match super::replica::as_primary(|| execute(&mut ctx, &argv)) {
                Frame::Error(e) => Err(String::from_utf8_lossy(&e).into_owned()),
                _ => Ok(()),
            }
        };
        run(&[b"FUNCTION", b"FLUSH"])?;
        run(&[b"FLUSHALL"])?;
        let cfg = shared.config().clone();
        let info = crate::rdb::load::load_into(ks, &cfg, payload, 0).map_err(|e| e.to_string())?;
        for code in &info.functions {
            run(&[b"FUNCTION", b"LOAD", b"REPLACE", code])?;
        }
        crate::notice!("Done loading RDB, keys loaded: {}.", info.keys);
        Ok(())
    });
    ks.set_loading(false);
    shared.clients.unregister(client.id);
    result?;
    if ks.aof().is_some_and(|a| a.enabled()) {
        crate::rdb::persist::start_aof_rewrite(shared)
            .map_err(|e| format!("Failed to rewrite the AOF after the sync: {e}"))?;
    }
    Ok(())
}
