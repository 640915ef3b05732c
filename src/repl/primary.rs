//! The primary's side of one replica connection, after its PSYNC/SYNC: send the RDB (full sync),
//! then the stream from the backlog as it grows, and read the replica's `REPLCONF ACK`s.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::pin::Pin;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::futures::Notified;

use super::{Takeover, lock, unix_now};
use crate::cmd::is_opt;
use crate::resp::{Decoded, RequestDecoder};
use crate::state::Shared;

/// Most bytes written to a replica per wake-up (whole backlog chunks past the first).
const SEND_BYTES: usize = 1 << 20;

/// Serve a replica on `stream` until it goes away, falls out of the backlog, or is disconnected.
/// `closing` is the connection's own close signal (CLIENT KILL, shutdown).
pub async fn serve(
    shared: &Shared,
    stream: &mut TcpStream,
    t: Box<Takeover>,
    rbuf: BytesMut,
    closing: Pin<&mut Notified<'_>>,
) {
    let link = Arc::clone(&t.link);
    let name = format!("{}:{}", link.ip, link.port);
    if let Err(e) = run(shared, stream, *t, rbuf, closing).await {
        crate::notice!("Connection with replica {name} lost ({e}).");
    } else {
        crate::notice!("Connection with replica {name} lost.");
    }
    lock(&shared.repl.replicas).retain(|r| r.id != link.id);
    shared.ks.repl_feed().backlog().set_reader(link.id, None);
    shared.repl.forget(link.id);
    shared.repl.note_ack();
}

async fn run(
    shared: &Shared,
    stream: &mut TcpStream,
    t: Takeover,
    mut rbuf: BytesMut,
    closing: Pin<&mut Notified<'_>>,
) -> Result<(), String> {
    let link = t.link;
    let feed = shared.ks.repl_feed();
    let io = |e: std::io::Error| e.to_string();
    if let Some(g) = &t.greeting {
        stream.write_all(g.as_bytes()).await.map_err(io)?;
    }
    let wait_first_ack = t.diskless && t.payload.is_some();
    if let Some(mut payload) = t.payload {
        use super::rdb::Chunk;
        *lock(&link.state) = "send_bulk";
        let died = || "the sync thread ended without its payload".to_string();
        if t.diskless {
            // Redis's diskless sync: `$EOF:<mark>`, the RDB as it is encoded, then the mark.
            let mark = super::new_replid();
            stream.write_all(format!("$EOF:{mark}\r\n").as_bytes()).await.map_err(io)?;
            loop {
                match payload.recv().await.ok_or_else(died)? {
                    Chunk::Data(chunk) => {
                        stream.write_all(&chunk).await.map_err(io)?;
                        crate::state::Stats::add(&shared.stats.net_output_bytes, chunk.len() as u64);
                    }
                    Chunk::End => break,
                    Chunk::Failed(e) => return Err(e),
                }
            }
            stream.write_all(mark.as_bytes()).await.map_err(io)?;
        } else {
            let rdb = match payload.recv().await.ok_or_else(died)? {
                Chunk::Data(rdb) => rdb,
                Chunk::End => Vec::new(),
                Chunk::Failed(e) => return Err(e),
            };
            stream.write_all(format!("${}\r\n", rdb.len()).as_bytes()).await.map_err(io)?;
            stream.write_all(&rdb).await.map_err(io)?;
        }
        *lock(&link.state) = "online";
        link.ack_time.store(unix_now(), Ordering::Relaxed);
        crate::notice!("Synchronization with replica {}:{} succeeded", link.ip, link.port);
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&*stream);
    let (mut rd, mut wr) = stream.split();
    let mut from = t.from;
    // Chunks appended while the writer is idle are written to the socket by whoever appends
    // them (see `outlet`); the writer is woken only when they leave it something to send.
    let outlet = super::outlet::Outlet::new(link.id, shared.stats.net_output_bytes.clone());
    let _attached = feed.attach(outlet.clone());
    // Writers wait for a flurrydb replica that applies far behind (see `flow`).
    let flow = t.flow.then(|| feed.flow.attach(from));
    let mut shutdown = shared.shutdown_watch.subscribe();
    // After a diskless payload the stream waits for the replica's first ACK, as Redis's
    // `repl_put_online_on_ack`: a replica finds the payload's end by the mark being the last bytes
    // it read, so nothing may follow the mark until it has loaded.
    let first_ack = tokio::sync::Notify::new();
    let writer = async {
        if wait_first_ack {
            first_ack.notified().await;
        }
        loop {
            let chunks = feed.backlog().read_from(from, SEND_BYTES);
            let Some(chunks) = chunks else {
                return Err::<(), String>("it fell behind the backlog".into());
            };
            if chunks.is_empty() {
                // Everything up to `from` written: idle, unless the stream moved meanwhile. The
                // guard lives in this future, so it is dropped (the socket taken back) before the
                // connection can close the socket, whichever branch of the select below ends it.
                if let Some(idle) = outlet.idle(fd, from, || feed.end()) {
                    outlet.wake.notified().await;
                    from = idle.resume();
                }
                continue;
            }
            for c in &chunks {
                wr.write_all(c).await.map_err(io)?;
                from += c.len() as u64;
                crate::state::Stats::add(&shared.stats.net_output_bytes, c.len() as u64);
            }
            feed.backlog().set_reader(link.id, Some(from));
        }
    };
    let reader = async {
        let mut decoder = RequestDecoder::default();
        loop {
            if rbuf.capacity() - rbuf.len() < 1024 {
                rbuf.reserve(4096);
            }
            match rd.read_buf(&mut rbuf).await {
                Ok(0) => return Ok(()),
                Err(e) => return Err(e.to_string()),
                Ok(_) => {}
            }
            loop {
                match decoder.decode(&mut rbuf, 1 << 20) {
                    Ok(Decoded::Command(argv)) => {
                        if argv.len() >= 3 && is_opt(&argv[0], "replconf") && is_opt(&argv[1], "ack") {
                            if let Some(off) = crate::util::parse_i64(&argv[2]) {
                                link.ack.fetch_max(off.max(0) as u64, Ordering::Relaxed);
                                if let Some(flow) = &flow {
                                    feed.flow.acked(&flow.link, off.max(0) as u64, feed.end());
                                }
                            }
                            link.ack_time.store(unix_now(), Ordering::Relaxed);
                            shared.repl.note_ack();
                            first_ack.notify_one();
                        }
                    }
                    Ok(Decoded::Incomplete) => break,
                    Err(e) => return Err(format!("protocol error: {}", e.reply_text())),
                }
            }
        }
    };
    tokio::select! {
        r = writer => r,
        r = reader => r,
        _ = link.kill.notified() => Ok(()),
        _ = closing => Ok(()),
        _ = shutdown.wait_for(|s| *s) => Ok(()),
    }
}
