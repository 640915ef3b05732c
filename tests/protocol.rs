//! RESP framing against the real server: pipelining, inline commands, protocol errors, abuse.
#![cfg(not(feature = "loom"))]
mod common;

use std::io::Write;
use std::time::Duration;

use common::Server;

#[test]
fn pipelined_requests_get_their_replies_in_order() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let mut req = Vec::new();
    for i in 0..100 {
        req.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n$2\r\nk{}\r\n${}\r\n{}\r\n", i % 10, i.to_string().len(), i).as_bytes(),
        );
        req.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n$2\r\nk{}\r\n", i % 10).as_bytes());
    }
    c.send(&req);
    for i in 0..100 {
        assert_eq!(c.reply(), b"+OK\r\n");
        assert_eq!(c.reply(), format!("${}\r\n{}\r\n", i.to_string().len(), i).into_bytes());
    }
}

/// The connection prefetches the keys of the requests ahead in its buffer (a hint only): a batch
/// with SELECT, inline requests, keys that appear twice, growth of the keyspace under it and a
/// request cut between two reads still answers each request as if run alone, in order.
#[test]
fn a_prefetched_pipeline_answers_as_requests_run_one_by_one() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let cmd = |args: &[&str]| {
        let mut r = format!("*{}\r\n", args.len());
        for a in args {
            r.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        r
    };
    let mut req = String::new();
    let mut want = String::new();
    req += &cmd(&["SET", "a", "1"]);
    want += "+OK\r\n";
    req += &cmd(&["SELECT", "1"]);
    want += "+OK\r\n";
    req += &cmd(&["GET", "a"]);
    want += "$-1\r\n";
    req += &cmd(&["SET", "a", "2"]);
    want += "+OK\r\n";
    for i in 1..=3 {
        req += &cmd(&["INCR", "n"]);
        want += &format!(":{i}\r\n");
    }
    req += "GET a\r\n";
    want += "$1\r\n2\r\n";
    req += &cmd(&["SELECT", "0"]);
    want += "+OK\r\n";
    // Enough new keys in one batch to grow the parts the later requests read.
    for i in 0..3000 {
        req += &cmd(&["SET", &format!("k{i}"), &format!("v{i}")]);
        want += "+OK\r\n";
        if i % 7 == 0 {
            req += &cmd(&["GET", &format!("k{}", i / 2)]);
            let v = format!("v{}", i / 2);
            want += &format!("${}\r\n{v}\r\n", v.len());
        }
    }
    req += &cmd(&["GET", "a"]);
    want += "$1\r\n1\r\n";
    req += "*2\r\n$3\r\nGET\r\n$1\r\n";
    c.send(req.as_bytes());
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"a\r\n");
    want += "$1\r\n1\r\n";
    let mut got = Vec::new();
    while got.len() < want.len() {
        got.extend_from_slice(&c.reply());
    }
    assert_eq!(String::from_utf8_lossy(&got), want);
}

#[test]
fn inline_commands_work_as_typed_into_telnet() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    c.send(b"SET greeting \"hello world\"\r\nGET greeting\n\r\n");
    assert_eq!(c.reply(), b"+OK\r\n");
    assert_eq!(c.reply(), b"$11\r\nhello world\r\n");
    c.send(b"FOO a b\r\n");
    assert_eq!(c.reply(), b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
}

#[test]
fn protocol_errors_reply_then_close_only_that_connection() {
    let s = Server::start(&[]);
    let mut other = s.raw();
    let cases: [(&[u8], &[u8]); 5] = [
        (b"*a\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$536870913\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\nx\r\n", b"-ERR Protocol error: expected '$', got 'x'\r\n"),
        (b"SET \"a b\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    ];
    for (input, expected) in cases {
        let mut c = s.raw();
        c.send(b"PING\r\n");
        c.send(input);
        let mut want = b"+PONG\r\n".to_vec();
        want.extend_from_slice(expected);
        assert_eq!(c.read_to_close(), want, "input {:?}", String::from_utf8_lossy(input));
    }
    assert_eq!(other.cmds(&["SET", "still", "here"]), b"+OK\r\n");
}

#[test]
fn huge_declared_lengths_and_garbage_do_not_hurt_other_clients() {
    let s = Server::start(&[]);
    let mut good = s.raw();
    let mut abusers = Vec::new();
    for payload in
        [&b"*999999999\r\n"[..], b"*1\r\n$2000000000\r\n", b"*2\r\n$3\r\nSET\r\n$100000\r\nabc", b"\x00\xff\x13garbage"]
    {
        let mut c = s.raw();
        c.send(payload);
        abusers.push(c);
    }
    // Half a command, then a disconnect.
    {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        c.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\n").unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(good.cmds(&["SET", "a", "1"]), b"+OK\r\n");
    assert_eq!(good.cmds(&["INCR", "a"]), b":2\r\n");
    let rss_kb = rss_kb(s.child.as_ref().unwrap().id());
    assert!(rss_kb < 200 * 1024, "server RSS {rss_kb} kB after huge declared sizes");
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn sixteen_databases_are_independent() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    for db in 0..16 {
        assert_eq!(c.cmds(&["SELECT", &db.to_string()]), b"+OK\r\n");
        assert_eq!(c.cmds(&["SET", "k", &format!("v{db}")]), b"+OK\r\n");
    }
    for db in 0..16 {
        c.cmds(&["SELECT", &db.to_string()]);
        assert_eq!(c.cmds(&["GET", "k"]), format!("${}\r\nv{db}\r\n", format!("v{db}").len()).into_bytes());
    }
    assert_eq!(c.cmds(&["SELECT", "16"]), b"-ERR DB index is out of range\r\n");
}

#[test]
fn newlines_quoted_into_an_error_become_spaces_and_the_stream_stays_in_sync() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    // Redis 7.0.15 replies exactly this (CR and LF of the quoted option turned into spaces).
    assert_eq!(c.cmd(&[b"HELLO", b"3", b"x\r\ny"]), b"-ERR Syntax error in HELLO option 'x  y'\r\n".to_vec());
    assert_eq!(c.cmd(&[b"PING"]), b"+PONG\r\n".to_vec());
}
