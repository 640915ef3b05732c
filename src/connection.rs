//! One connection: read, decode every complete request in the buffer, execute each, and send the
//! replies of the whole batch in one write. Under appendfsync always the batch's replies leave only
//! once the AOF records of its writes are durable. Mirrors the client half of Redis's `networking.c`.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cmd::{Client, Ctx, execute};
use crate::error::Error;
use crate::resp::{Decoded, Frame, RequestDecoder};
use crate::state::{ClientInfo, Shared, Stats};
use crate::util::now_ms;

const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Replies are flushed mid-batch once this much output is pending.
const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;

/// The reply span of one write command in the output buffer, and its AOF sequence number.
struct PendingWrite {
    start: usize,
    end: usize,
}

/// Serve one client until it disconnects, QUITs or sends a protocol error.
pub async fn serve(shared: Arc<Shared>, mut stream: TcpStream, info: Arc<ClientInfo>) {
    let _ = stream.set_nodelay(true);
    let id = info.id;
    let mut client = Client::new(info);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut decoder = RequestDecoder::default();
    let mut writes: Vec<PendingWrite> = Vec::new();
    'conn: loop {
        if rbuf.capacity() - rbuf.len() < READ_CHUNK_BYTES / 4 {
            rbuf.reserve(READ_CHUNK_BYTES);
        }
        match stream.read_buf(&mut rbuf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => Stats::add(&shared.stats.net_input_bytes, n as u64),
        }
        let max_bulk = shared.config().proto_max_bulk_len;
        let now = now_ms();
        let mut batch_seq = 0u64;
        let mut close = false;
        loop {
            match decoder.decode(&mut rbuf, max_bulk) {
                Ok(Decoded::Command(argv)) => {
                    let start = wbuf.len();
                    let seq = run_command(&shared, &mut client, now, &argv, &mut wbuf);
                    if seq > 0 {
                        batch_seq = batch_seq.max(seq);
                        writes.push(PendingWrite { start, end: wbuf.len() });
                    }
                    if client.close_after_reply {
                        close = true;
                        break;
                    }
                    if wbuf.len() >= OUTPUT_FLUSH_BYTES {
                        if !flush(&shared, &mut stream, &mut wbuf, &mut writes, batch_seq).await {
                            break 'conn;
                        }
                        batch_seq = 0;
                    }
                }
                Ok(Decoded::Incomplete) => break,
                Err(e) => {
                    Frame::Error(Bytes::from(e.reply_text())).encode(&mut wbuf);
                    close = true;
                    break;
                }
            }
        }
        client.info.query_buf.store(rbuf.len(), std::sync::atomic::Ordering::Relaxed);
        if !flush(&shared, &mut stream, &mut wbuf, &mut writes, batch_seq).await || close {
            break;
        }
    }
    shared.clients.unregister(id);
}

/// Execute one command, append its reply, and return the sequence number of its last AOF record.
fn run_command(shared: &Shared, client: &mut Client, now: u64, argv: &[Bytes], out: &mut BytesMut) -> u64 {
    let mut ctx = Ctx::new(shared, client, now);
    let frame = execute(&mut ctx, argv);
    if std::mem::take(&mut ctx.client.skip_reply) {
        return ctx.last_seq.get();
    }
    frame.encode(out);
    ctx.last_seq.get()
}

/// Wait until the batch's AOF records are durable (appendfsync always), then write the replies.
/// If they cannot be made durable, the replies of the batch's writes become MISCONF errors: nothing
/// is acknowledged that is not on disk. Returns false when the connection is gone.
async fn flush(
    shared: &Shared,
    stream: &mut TcpStream,
    wbuf: &mut BytesMut,
    writes: &mut Vec<PendingWrite>,
    batch_seq: u64,
) -> bool {
    if batch_seq > 0
        && let Some(aof) = shared.ks.aof()
        && aof.wait_durable(batch_seq).await.is_err()
    {
        *wbuf = replace_write_replies(wbuf, writes);
    }
    writes.clear();
    if wbuf.is_empty() {
        return true;
    }
    Stats::add(&shared.stats.net_output_bytes, wbuf.len() as u64);
    let ok = stream.write_all(wbuf).await.is_ok();
    wbuf.clear();
    ok
}

/// Rebuild the output with every write command's reply replaced by the MISCONF error.
fn replace_write_replies(wbuf: &BytesMut, writes: &[PendingWrite]) -> BytesMut {
    let mut out = BytesMut::with_capacity(wbuf.len());
    let mut pos = 0;
    for w in writes {
        out.extend_from_slice(&wbuf[pos..w.start]);
        Error::Misconf.to_frame().encode(&mut out);
        pos = w.end;
    }
    out.extend_from_slice(&wbuf[pos..]);
    out
}
