//! `resp_decode`: arbitrary bytes through `RequestDecoder::decode`, whole and in chunks.
//!
//! Input layout: byte 0 = number of cut points (mod 8), then that many bytes each choosing a cut
//! (as a fraction of the payload), then the payload. For each max bulk length (small, Redis's
//! default, unlimited) the payload is decoded in one piece, in the chosen chunks and (when short)
//! one byte at a time. Checked:
//! - no panic, and every chunking yields the same commands, then the same error or the same
//!   unconsumed tail and pending bulk;
//! - a decode call never grows the buffer, a command never holds more bytes than were consumed
//!   for it, and after `Incomplete` a second call without new bytes changes nothing;
//! - no single allocation is sized by a declared count or length: the largest allocation during a
//!   call stays within what the bytes actually received justify (1024 preallocated argument slots,
//!   then growth with the arguments received), and a command's argv capacity is at most
//!   max(1024, 2 * argc);
//! - protocol error texts are one line; a multibulk command re-encoded decodes to itself.

use bytes::{Bytes, BytesMut};
use flurrydb::resp::{Decoded, ProtocolError, RequestDecoder, decode_request};

use crate::track;

/// A small max bulk length, so that "invalid bulk length" is reachable with short inputs.
pub const SMALL_MAX_BULK: usize = 16;
/// Redis's default proto-max-bulk-len.
pub const DEFAULT_MAX_BULK: usize = 512 * 1024 * 1024;
/// Argument slots the decoder may reserve before any argument arrived.
const ARGV_PREALLOC_MAX: usize = 1024;
/// Payloads up to this length are also decoded one byte at a time.
const BYTEWISE_MAX: usize = 512;

/// How a decoding run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Waiting for more bytes: the unconsumed tail and the bulk length being read, if any.
    Incomplete { tail: Vec<u8>, pending_bulk: Option<usize> },
    /// The connection would be closed with this error.
    Error(ProtocolError),
}

/// Everything a decoding run produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub commands: Vec<Vec<Bytes>>,
    pub end: End,
}

/// The fuzz target body.
pub fn run(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let ncuts = (n % 8) as usize;
    let (cuts, payload) = rest.split_at(ncuts.min(rest.len()));
    let mut points: Vec<usize> = cuts.iter().map(|&c| c as usize * payload.len() / 255).collect();
    points.sort_unstable();
    points.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(&payload[start..p]);
        start = p;
    }
    chunks.push(&payload[start..]);

    for max in [SMALL_MAX_BULK, DEFAULT_MAX_BULK, usize::MAX] {
        let whole = decode_chunks(&[payload], max);
        let chunked = decode_chunks(&chunks, max);
        assert_eq!(whole, chunked, "max {max}: chunks {chunks:?} decode differently from the whole");
        if payload.len() <= BYTEWISE_MAX {
            let bytes: Vec<&[u8]> = payload.chunks(1).collect();
            let bytewise = decode_chunks(&bytes, max);
            assert_eq!(whole, bytewise, "max {max}: byte-at-a-time decodes differently from the whole");
        }
        if max == usize::MAX {
            // The AOF loader's one-shot decode agrees with the incremental decoder's first step.
            let first = match (whole.commands.first(), &whole.end) {
                (Some(c), _) => Ok(Some(c.clone())),
                (None, End::Error(e)) => Err(e.clone()),
                (None, End::Incomplete { .. }) => Ok(None),
            };
            assert_eq!(decode_request(payload), first, "decode_request disagrees");
        }
        for cmd in &whole.commands {
            if cmd.iter().all(|a| a.len() <= max) {
                let again = decode_chunks(&[&encode_multibulk(cmd)], max);
                assert_eq!(again.commands, vec![cmd.clone()], "re-encoded command decodes differently");
                assert_eq!(again.end, End::Incomplete { tail: vec![], pending_bulk: None });
            }
        }
    }
}

/// `*N\r\n$len\r\narg\r\n...`.
fn encode_multibulk(args: &[Bytes]) -> Vec<u8> {
    let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
    let mut out = Vec::new();
    flurrydb::aof::encode_command(&mut out, &argv);
    out
}

/// The most one decode call may allocate at once, given `total` bytes of input: the preallocated
/// argument slots, or a vector grown (doubling) to the arguments actually received, each of which
/// costs at least one input byte; plus the interned error texts.
fn allocation_allowance(total: usize) -> usize {
    let slot = std::mem::size_of::<Bytes>().max(std::mem::size_of::<Vec<u8>>());
    slot * ARGV_PREALLOC_MAX.max(2 * (total + 1)) + 4 * (total + 1) + 8192
}

/// Feed `chunks` one after the other to a fresh decoder (as socket reads would arrive), decoding
/// everything after each, and check the per-call properties.
pub fn decode_chunks(chunks: &[&[u8]], max: usize) -> Outcome {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let allowance = allocation_allowance(total);
    let mut d = RequestDecoder::default();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    // Bytes consumed since the last command was returned.
    let mut consumed = 0usize;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            track::reset();
            let r = d.decode(&mut buf, max);
            let largest = track::largest();
            assert!(buf.len() <= before, "decode grew the buffer from {before} to {}", buf.len());
            consumed += before - buf.len();
            assert!(
                largest <= allowance,
                "one allocation of {largest} bytes while decoding {total} input bytes (max bulk {max})"
            );
            match r {
                Ok(Decoded::Command(args)) => {
                    assert!(!args.is_empty(), "empty command returned");
                    assert!(
                        args.capacity() <= ARGV_PREALLOC_MAX.max(2 * args.len()),
                        "argv capacity {} for {} arguments",
                        args.capacity(),
                        args.len()
                    );
                    let bytes: usize = args.iter().map(|a| a.len()).sum();
                    assert!(bytes <= consumed, "command holds {bytes} bytes but only {consumed} were consumed");
                    consumed = 0;
                    commands.push(args);
                }
                Ok(Decoded::Incomplete) => {
                    let (len, pending) = (buf.len(), d.pending_bulk_len());
                    assert_eq!(d.decode(&mut buf, max), Ok(Decoded::Incomplete), "a retry without new bytes");
                    assert_eq!((buf.len(), d.pending_bulk_len()), (len, pending), "a retry without new bytes");
                    break;
                }
                Err(e) => {
                    let text = e.reply_text();
                    assert!(!text.contains(['\r', '\n']), "protocol error text {text:?} spans lines");
                    return Outcome { commands, end: End::Error(e) };
                }
            }
        }
    }
    Outcome { commands, end: End::Incomplete { tail: buf.to_vec(), pending_bulk: d.pending_bulk_len() } }
}
