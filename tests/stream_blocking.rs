//! Blocking stream reads (XREAD BLOCK, XREADGROUP BLOCK) through the real server: hand-off by
//! XADD in blocking order, `$`, timeouts, NOGROUP after XGROUP DESTROY, no blocking inside MULTI,
//! and an AOF that replays what the hand-offs delivered.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Server, bulk, dump_keyspace, s, send, wait_blocked};

/// `[[key, [[id, [f, v]]]]]`: one key, one entry with one field, under RESP2.
fn one(key: &str, id: &str, f: &str, v: &str) -> String {
    format!("*1\r\n*2\r\n{}*1\r\n*2\r\n{}*2\r\n{}{}", bulk(key), bulk(id), bulk(f), bulk(v))
}

#[test]
fn xread_block_is_served_by_xadd_and_times_out_as_redis() {
    let srv = Server::start(&[]);
    let (mut a, mut b, mut w) = (srv.raw(), srv.raw(), srv.raw());
    w.cmds(&["XADD", "s", "1-1", "f", "old"]);
    // `$`: only what is added after the call; a second reader on another key and this one.
    send(&mut a, &["XREAD", "BLOCK", "0", "STREAMS", "other", "s", "0", "$"]);
    send(&mut b, &["XREAD", "COUNT", "5", "BLOCK", "0", "STREAMS", "s", "1-1"]);
    wait_blocked(&mut w, 2);
    assert_eq!(s(w.cmds(&["XADD", "s", "2-0", "f", "new"])), bulk("2-0"));
    assert_eq!(s(a.reply()), one("s", "2-0", "f", "new"));
    assert_eq!(s(b.reply()), one("s", "2-0", "f", "new"));
    assert_eq!(s(a.cmds(&["XREAD", "BLOCK", "50", "STREAMS", "s", "$"])), "*-1\r\n");
    a.cmds(&["MULTI"]);
    a.cmds(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    assert_eq!(s(a.cmds(&["EXEC"])), "*1\r\n*-1\r\n");
    wait_blocked(&mut w, 0);
}

#[test]
fn blocked_group_readers_get_new_entries_in_blocking_order_and_the_aof_replays() {
    let mut srv = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let (mut a, mut b, mut w) = (srv.raw(), srv.raw(), srv.raw());
    assert_eq!(s(w.cmds(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])), "+OK\r\n");
    send(&mut a, &["XREADGROUP", "GROUP", "g", "ca", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut w, 1);
    send(&mut b, &["XREADGROUP", "GROUP", "g", "cb", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut w, 2);
    w.cmds(&["XADD", "s", "1-0", "f", "one"]);
    assert_eq!(s(a.reply()), one("s", "1-0", "f", "one"));
    // The first reader took it for the group: the second waits for the next entry.
    wait_blocked(&mut w, 1);
    w.cmds(&["XADD", "s", "2-0", "f", "two"]);
    assert_eq!(s(b.reply()), one("s", "2-0", "f", "two"));
    let pending = s(w.cmds(&["XPENDING", "s", "g"]));
    assert!(pending.starts_with("*4\r\n:2\r\n$3\r\n1-0\r\n$3\r\n2-0\r\n"), "{pending}");
    // A destroyed group answers its blocked readers.
    send(&mut a, &["XREADGROUP", "GROUP", "g", "ca", "BLOCK", "0", "STREAMS", "s", ">"]);
    wait_blocked(&mut w, 1);
    assert_eq!(s(w.cmds(&["XGROUP", "CREATE", "s", "g2", "0"])), "+OK\r\n");
    let before = dump_keyspace(srv.port);
    assert_eq!(s(w.cmds(&["XGROUP", "DESTROY", "s", "g"])), ":1\r\n");
    assert_eq!(s(a.reply()), "-NOGROUP the consumer group this client was blocked on no longer exists\r\n");
    assert_ne!(before, dump_keyspace(srv.port));
    let before = dump_keyspace(srv.port);
    srv.kill9();
    srv.restart();
    assert_eq!(before, dump_keyspace(srv.port));
}
