//! Blocking sorted-set pops (BZPOPMIN, BZPOPMAX, BZMPOP) through the real server: immediate
//! service, hand-off by ZADD, ZUNIONSTORE and RENAME in blocking order, type checks, timeouts, and an AOF
//! that replays to what memory held after kill -9.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Server, bulk, dump_keyspace, s, send, wait_blocked};

/// BZPOPMIN's `[key, member, score]` under RESP2.
fn triple(key: &str, member: &str, score: &str) -> String {
    format!("*3\r\n{}{}{}", bulk(key), bulk(member), bulk(score))
}

#[test]
fn bzpop_serves_at_once_and_checks_types_as_redis() {
    let srv = Server::start(&[]);
    let mut c = srv.raw();
    c.cmds(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(s(c.cmds(&["BZPOPMIN", "none", "z", "0"])), triple("z", "a", "1"));
    assert_eq!(s(c.cmds(&["BZPOPMAX", "z", "0"])), triple("z", "c", "3"));
    c.cmds(&["SET", "str", "x"]);
    let wrongtype = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(s(c.cmds(&["BZPOPMIN", "str", "z", "0"])), wrongtype);
    assert_eq!(s(c.cmds(&["BZPOPMIN", "z", "-1"])), "-ERR timeout is negative\r\n");
    assert_eq!(s(c.cmds(&["BZMPOP", "0", "0", "z", "MIN"])), "-ERR numkeys should be greater than 0\r\n");
    let popped = format!("*2\r\n{}*1\r\n*2\r\n{}{}", bulk("z"), bulk("b"), bulk("2"));
    assert_eq!(s(c.cmds(&["BZMPOP", "0", "2", "none", "z", "MIN", "COUNT", "5"])), popped);
    assert_eq!(s(c.cmds(&["EXISTS", "z"])), ":0\r\n");
    assert_eq!(s(c.cmds(&["BZPOPMIN", "z", "0.05"])), "*-1\r\n");
    c.cmds(&["MULTI"]);
    c.cmds(&["BZPOPMAX", "z", "0"]);
    assert_eq!(s(c.cmds(&["EXEC"])), "*1\r\n*-1\r\n");
}

#[test]
fn writers_hand_members_to_blocked_clients_in_blocking_order_and_the_aof_replays() {
    let mut srv = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let (mut a, mut b, mut l, mut w) = (srv.raw(), srv.raw(), srv.raw(), srv.raw());
    send(&mut a, &["BZPOPMIN", "z", "0"]);
    wait_blocked(&mut w, 1);
    send(&mut b, &["BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"]);
    wait_blocked(&mut w, 2);
    // A client blocked on the same key for a list is not served by a sorted set.
    send(&mut l, &["BLPOP", "z", "0.2"]);
    wait_blocked(&mut w, 3);
    assert_eq!(s(w.cmds(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"])), ":4\r\n");
    assert_eq!(s(a.reply()), triple("z", "a", "1"));
    let two = format!("*2\r\n{}*2\r\n*2\r\n{}{}*2\r\n{}{}", bulk("z"), bulk("d"), bulk("4"), bulk("c"), bulk("3"));
    assert_eq!(s(b.reply()), two);
    assert_eq!(s(l.reply()), "*-1\r\n");
    assert_eq!(s(w.cmds(&["ZRANGE", "z", "0", "-1"])), format!("*1\r\n{}", bulk("b")));
    // A STORE command's destination serves its blocked clients too.
    send(&mut a, &["BZPOPMAX", "dst", "0"]);
    wait_blocked(&mut w, 1);
    assert_eq!(s(w.cmds(&["ZUNIONSTORE", "dst", "1", "z", "WEIGHTS", "10"])), ":1\r\n");
    assert_eq!(s(a.reply()), triple("dst", "b", "20"));
    assert_eq!(s(w.cmds(&["EXISTS", "dst"])), ":0\r\n");
    // So does a sorted set renamed onto a key clients are blocked on.
    send(&mut a, &["BZPOPMIN", "renamed", "0"]);
    wait_blocked(&mut w, 1);
    w.cmds(&["ZADD", "src", "5", "x", "6", "y"]);
    assert_eq!(s(w.cmds(&["RENAME", "src", "renamed"])), "+OK\r\n");
    assert_eq!(s(a.reply()), triple("renamed", "x", "5"));
    assert_eq!(s(w.cmds(&["ZCARD", "renamed"])), ":1\r\n");
    let before = dump_keyspace(srv.port);
    srv.kill9();
    srv.restart();
    assert_eq!(dump_keyspace(srv.port), before);
}
