//! `MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password | AUTH2
//! username password] [KEYS key ...]`: move keys to another server (Redis or ours) as
//! `RESTORE` commands carrying DUMP payloads, deleting them here once the target accepted them
//! unless COPY. Mirrors `migrateCommand` in Redis's `cluster.c`, without its socket cache (each
//! call connects afresh, so it always sends SELECT). The network wait runs through `offload`,
//! so the other connections of this worker thread are not held up by it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::{Ctx, is_opt};
use crate::error::{Error, Result};
use crate::pubsub::notify::class::GENERIC;
use crate::resp::Frame;

fn put_bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

fn put_cmd(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        put_bulk(out, a);
    }
}

/// How a transfer failed.
enum Fail {
    /// Could not connect (no retry).
    Connect,
    /// Writing or reading the socket failed; `timed_out` stops the retry.
    Io { writing: bool, timed_out: bool },
}

/// Connect, send `cmd`, read one reply line per expected reply.
fn exchange(
    host: &str,
    port: &str,
    timeout: Duration,
    cmd: &[u8],
    replies: usize,
) -> std::result::Result<Vec<String>, (Fail, Vec<String>)> {
    let addr = (host, port.parse::<u16>().unwrap_or(0)).to_socket_addrs().ok().and_then(|mut a| a.next());
    let Some(addr) = addr else { return Err((Fail::Connect, Vec::new())) };
    // Redis connects without blocking and learns of a refused connection only when it writes: a
    // refusal reads as a write error, only a timeout as a failed connection.
    let s = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err((Fail::Connect, Vec::new())),
        Err(_) => return Err((Fail::Io { writing: true, timed_out: false }, Vec::new())),
    };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let timed = |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
    if let Err(e) = (&s).write_all(cmd) {
        return Err((Fail::Io { writing: true, timed_out: timed(&e) }, Vec::new()));
    }
    let mut r = BufReader::new(&s);
    let mut lines = Vec::with_capacity(replies);
    for _ in 0..replies {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(n) if n > 0 => lines.push(line.trim_end_matches(['\r', '\n']).to_string()),
            Ok(_) => return Err((Fail::Io { writing: false, timed_out: false }, lines)),
            Err(e) => return Err((Fail::Io { writing: false, timed_out: timed(&e) }, lines)),
        }
    }
    Ok(lines)
}

/// `MIGRATE`.
pub fn migrate(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (mut copy, mut replace) = (false, false);
    let (mut user, mut pass): (Option<&Bytes>, Option<&Bytes>) = (None, None);
    let mut keys: &[Bytes] = std::slice::from_ref(&argv[3]);
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if is_opt(&argv[j], "copy") {
            copy = true;
        } else if is_opt(&argv[j], "replace") {
            replace = true;
        } else if is_opt(&argv[j], "auth") {
            if more == 0 {
                return Err(Error::Syntax);
            }
            j += 1;
            pass = Some(&argv[j]);
        } else if is_opt(&argv[j], "auth2") {
            if more < 2 {
                return Err(Error::Syntax);
            }
            user = Some(&argv[j + 1]);
            pass = Some(&argv[j + 2]);
            j += 2;
        } else if is_opt(&argv[j], "keys") {
            if !argv[3].is_empty() {
                return Err(Error::err(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = &argv[j + 1..];
            break;
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    let timeout = crate::util::parse_i64(&argv[5]).ok_or(Error::NotInteger)?;
    let dbid = crate::util::parse_i64(&argv[4]).ok_or(Error::NotInteger)?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });

    // The keys that exist, their payloads and remaining TTLs.
    let now = crate::util::now_ms();
    let mut found: Vec<(&Bytes, Vec<u8>, i64)> = Vec::new();
    for k in keys {
        let Some((value, at)) = ctx.read(k, |e| e.map(|e| (crate::db::SnapshotValue::of(e.value()), e.expire_at_ms())))
        else {
            ctx.count_lookup(k, false);
            continue;
        };
        ctx.count_lookup(k, true);
        let ttl = if at == 0 { 0 } else { (at as i64 - now as i64).max(1) };
        let opts = super::dump::encode_opts(ctx);
        found.push((k, crate::rdb::save::dump_payload(&value, &opts), ttl));
    }
    if found.is_empty() {
        return Ok(Frame::simple("NOKEY"));
    }
    let mut cmd = Vec::new();
    let mut replies = 0;
    if let Some(p) = pass {
        match user {
            Some(u) => put_cmd(&mut cmd, &[b"AUTH", u, p]),
            None => put_cmd(&mut cmd, &[b"AUTH", p]),
        }
        replies += 1;
    }
    put_cmd(&mut cmd, &[b"SELECT", dbid.to_string().as_bytes()]);
    replies += 1;
    let first_restore = replies;
    for (k, payload, ttl) in &found {
        let ttl = ttl.to_string();
        if replace {
            put_cmd(&mut cmd, &[b"RESTORE", k, ttl.as_bytes(), payload, b"REPLACE"]);
        } else {
            put_cmd(&mut cmd, &[b"RESTORE", k, ttl.as_bytes(), payload]);
        }
        replies += 1;
    }
    let host = String::from_utf8_lossy(&argv[1]).into_owned();
    let port = String::from_utf8_lossy(&argv[2]).into_owned();
    let outcome = ctx.offload(usize::MAX, || {
        let mut tries = 0;
        loop {
            tries += 1;
            match exchange(&host, &port, timeout, &cmd, replies) {
                Ok(lines) => return Ok(lines),
                Err((Fail::Connect, _)) => {
                    return Err(Error::Raw("IOERR error or timeout connecting to the client".into()));
                }
                Err((Fail::Io { writing, timed_out }, lines)) => {
                    // Replies read before the socket failed still count (keys the target took).
                    if lines.len() > first_restore || timed_out || tries == 2 {
                        return if lines.len() > first_restore {
                            Ok(lines)
                        } else {
                            Err(Error::Raw(format!(
                                "IOERR error or timeout {} to target instance",
                                if writing { "writing" } else { "reading" }
                            )))
                        };
                    }
                }
            }
        }
    })?;
    // The first error among AUTH, SELECT and the RESTOREs is the reply; keys the target took are
    // deleted here (unless COPY).
    let pre_err = outcome[..first_restore.min(outcome.len())].iter().find(|l| l.starts_with('-')).cloned();
    let mut first_err: Option<String> = None;
    let mut migrated: Vec<&Bytes> = Vec::new();
    for (i, line) in outcome.iter().enumerate().skip(first_restore) {
        let key = found[i - first_restore].0;
        if pre_err.is_some() || line.starts_with('-') {
            first_err.get_or_insert_with(|| pre_err.clone().unwrap_or_else(|| line.clone()));
        } else if !copy {
            migrated.push(key);
        }
    }
    for k in migrated {
        let w = ctx.write(&[k]);
        if w.map().remove(k) {
            w.log(&[b"DEL", k]);
            w.notify(GENERIC, "del", k);
        }
    }
    if let Some(e) = first_err.or(pre_err) {
        return Err(Error::Raw(format!("ERR Target instance replied with error: {}", &e[1..])));
    }
    if outcome.len() < replies {
        return Err(Error::Raw("IOERR error or timeout reading to target instance".into()));
    }
    Ok(Frame::ok())
}
