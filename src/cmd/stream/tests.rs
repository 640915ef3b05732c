//! Stream command tests (replies checked against redis-server 7.0.15).

use crate::cmd::testing::{Harness, arr, bulk, err, int, ok};
use crate::resp::Frame;

fn entry(id: &str, kv: &[&str]) -> Frame {
    arr(vec![bulk(id), arr(kv.iter().map(|s| bulk(s)).collect())])
}

#[test]
fn xadd_ids_errors_and_trimming_as_redis() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["XADD", "s", "1-1", "a", "1"]), bulk("1-1"));
    assert_eq!(h.run(&["XADD", "s", "1-*", "a", "2"]), bulk("1-2"));
    assert_eq!(h.run(&["XADD", "s", "5", "a", "3"]), bulk("5-0"));
    assert_eq!(
        h.run(&["XADD", "s", "5-0", "a", "3"]),
        err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(h.run(&["XADD", "s", "0-0", "a", "3"]), err("ERR The ID specified in XADD must be greater than 0-0"));
    assert_eq!(
        h.run(&["XADD", "s", "1-x", "a", "3"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    assert_eq!(h.run(&["XADD", "s", "6-0", "a"]), err("ERR wrong number of arguments for 'xadd' command"));
    assert_eq!(h.run(&["XADD", "nokey", "NOMKSTREAM", "*", "a", "1"]), Frame::Null);
    assert_eq!(h.run(&["XADD", "s", "MAXLEN", "2", "6-0", "b", "4"]), bulk("6-0"));
    assert_eq!(h.run(&["XLEN", "s"]), int(2));
    assert_eq!(h.run(&["XRANGE", "s", "-", "+"]), arr(vec![entry("5-0", &["a", "3"]), entry("6-0", &["b", "4"])]));
    assert_eq!(h.run(&["XRANGE", "s", "(5-0", "+"]), arr(vec![entry("6-0", &["b", "4"])]));
    assert_eq!(h.run(&["XRANGE", "s", "-", "+", "COUNT", "0"]), Frame::NullArray);
    assert_eq!(h.run(&["XREVRANGE", "s", "+", "-", "COUNT", "1"]), arr(vec![entry("6-0", &["b", "4"])]));
    assert_eq!(h.run(&["XDEL", "s", "5-0", "9-9"]), int(1));
    // An emptied stream stays, with its last ID: IDs never go back.
    assert_eq!(h.run(&["XDEL", "s", "6-0"]), int(1));
    assert_eq!(h.run(&["EXISTS", "s"]), int(1));
    assert_eq!(
        h.run(&["XADD", "s", "6-0", "a", "3"]),
        err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(h.run(&["XSETID", "s", "1-0"]), ok());
    assert_eq!(h.run(&["XSETID", "nokey", "1-0"]), err("ERR no such key"));
    assert_eq!(
        h.run(&["XTRIM", "s", "LIMIT", "5", "MAXLEN", "1"]),
        err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
}

#[test]
fn groups_deliver_claim_and_ack_as_redis() {
    let mut h = Harness::new();
    for id in ["1-0", "2-0", "3-0"] {
        h.run(&["XADD", "s", id, "f", id]);
    }
    assert_eq!(h.run(&["XGROUP", "CREATE", "s", "g", "0"]), ok());
    assert_eq!(h.run(&["XGROUP", "CREATE", "s", "g", "0"]), err("BUSYGROUP Consumer Group name already exists"));
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">"]),
        arr(vec![arr(vec![bulk("s"), arr(vec![entry("1-0", &["f", "1-0"]), entry("2-0", &["f", "2-0"])])])])
    );
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "nog", "c1", "STREAMS", "s", ">"]),
        err("NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option")
    );
    assert_eq!(h.run(&["XACK", "s", "g", "1-0", "1-0"]), int(1));
    assert_eq!(h.run(&["XCLAIM", "s", "g", "c2", "0", "2-0", "JUSTID"]), arr(vec![bulk("2-0")]));
    assert_eq!(h.run(&["XDEL", "s", "2-0"]), int(1));
    // The deleted entry is dropped from the PEL and reported; the cursor wraps.
    assert_eq!(
        h.run(&["XAUTOCLAIM", "s", "g", "c3", "0", "0"]),
        arr(vec![bulk("0-0"), arr(vec![]), arr(vec![bulk("2-0")])])
    );
    assert_eq!(h.run(&["XPENDING", "s", "g"]), arr(vec![int(0), Frame::Null, Frame::Null, Frame::NullArray]));
    assert_eq!(h.run(&["XGROUP", "DELCONSUMER", "s", "g", "c1"]), int(0));
    assert_eq!(h.run(&["XGROUP", "DESTROY", "s", "g"]), int(1));
}

/// Consumer-group bookkeeping does not touch a WATCHed stream (Redis 7.0.15 does not signal it):
/// XGROUP CREATE/SETID/CREATECONSUMER/DELCONSUMER/DESTROY, XREADGROUP, XACK, XCLAIM, XAUTOCLAIM,
/// XSETID. XADD does, and so does XGROUP CREATE ... MKSTREAM that creates the key.
#[test]
fn group_bookkeeping_leaves_watch_alone() {
    let mut h = Harness::new();
    let exec_after = |h: &mut Harness, key: &str, cmds: &[&[&str]]| {
        h.run(&["WATCH", key]);
        for c in cmds {
            assert!(!matches!(h.run(c), Frame::Error(_)), "{c:?}");
        }
        h.run(&["MULTI"]);
        h.run(&["PING"]);
        h.run(&["EXEC"])
    };
    h.run(&["XADD", "s", "1-1", "a", "b"]);
    let ran = arr(vec![Frame::Simple("PONG".into())]);
    let cmds: &[&[&str]] = &[
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XGROUP", "CREATECONSUMER", "s", "g", "c0"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &["XCLAIM", "s", "g", "c2", "0", "1-1"],
        &["XAUTOCLAIM", "s", "g", "c3", "0", "0"],
        &["XACK", "s", "g", "1-1"],
        &["XGROUP", "SETID", "s", "g", "0"],
        &["XGROUP", "DELCONSUMER", "s", "g", "c0"],
        &["XGROUP", "CREATE", "s", "g2", "0"],
        &["XGROUP", "DESTROY", "s", "g2"],
        &["XSETID", "s", "5-5"],
    ];
    assert_eq!(exec_after(&mut h, "s", cmds), ran);
    assert_eq!(exec_after(&mut h, "s", &[&["XADD", "s", "6-1", "a", "b"]]), Frame::NullArray);
    assert_eq!(exec_after(&mut h, "n", &[&["XGROUP", "CREATE", "n", "g", "$", "MKSTREAM"]]), Frame::NullArray);
}

/// The `radix-tree-keys` field of `XINFO STREAM key`.
fn node_count(h: &mut Harness, key: &str) -> Frame {
    match h.run(&["XINFO", "STREAM", key]) {
        Frame::Array(f) => {
            f.chunks(2).find(|p| p[0] == bulk("radix-tree-keys")).map(|p| p[1].clone()).unwrap_or(Frame::Null)
        }
        Frame::Map(f) => {
            f.into_iter().find(|(k, _)| *k == bulk("radix-tree-keys")).map(|(_, v)| v).unwrap_or(Frame::Null)
        }
        other => other,
    }
}

#[test]
fn exact_trim_keeps_a_node_it_empties_as_redis() {
    // Recorded from redis-server 7.0.15 (difffuzz seed 3 found it): XTRIM marks the entries of a
    // node deleted one by one but keeps the node; its last ID (a tombstone from XDEL) keeps a
    // MINID trim below it from removing the node whole. Only a MINID past it removes it.
    let mut h = Harness::new();
    for (id, v) in [("1-1", "1"), ("2-1", "2"), ("3-1", "3")] {
        assert_eq!(h.run(&["XADD", "t", id, "a", v]), bulk(id));
    }
    assert_eq!(h.run(&["XDEL", "t", "3-1"]), int(1));
    assert_eq!(h.run(&["XTRIM", "t", "MINID", "2-5"]), int(2));
    assert_eq!(h.run(&["XLEN", "t"]), int(0));
    assert_eq!(node_count(&mut h, "t"), int(1));
    assert_eq!(h.run(&["XTRIM", "t", "MINID", "3-0"]), int(0));
    assert_eq!(node_count(&mut h, "t"), int(1));
    assert_eq!(h.run(&["XTRIM", "t", "MINID", "3-2"]), int(0));
    assert_eq!(node_count(&mut h, "t"), int(0));
    assert_eq!(h.run(&["XADD", "t", "4-1", "b", "1"]), bulk("4-1"));
    assert_eq!(node_count(&mut h, "t"), int(1));
    assert_eq!(h.run(&["XRANGE", "t", "-", "+"]), arr(vec![entry("4-1", &["b", "1"])]));
}

#[test]
fn xack_that_acknowledges_nothing_answers_as_redis_and_changes_nothing() {
    // Replies recorded from redis-server 7.0.15.
    let mut h = Harness::new();
    assert_eq!(h.run(&["XACK", "nokey", "g", "bad-id"]), int(0));
    assert_eq!(h.run(&["XADD", "s", "1-1", "a", "1"]), bulk("1-1"));
    assert_eq!(h.run(&["XADD", "s", "2-1", "a", "2"]), bulk("2-1"));
    // No such group: 0, the IDs not even parsed.
    assert_eq!(h.run(&["XACK", "s", "nog", "bad-id"]), int(0));
    assert_eq!(h.run(&["XGROUP", "CREATE", "s", "g", "0"]), ok());
    // A group with nothing pending: 0 for valid IDs, the parse error for an invalid one.
    assert_eq!(h.run(&["XACK", "s", "g", "1-1", "5"]), int(0));
    assert_eq!(
        h.run(&["XACK", "s", "g", "1-1", "bad-id"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"]),
        arr(vec![arr(vec![bulk("s"), arr(vec![entry("1-1", &["a", "1"])])])])
    );
    // Pending 1-1: acknowledged once, then nothing is.
    assert_eq!(h.run(&["XACK", "s", "g", "2-1", "1-1", "1-1"]), int(1));
    assert_eq!(h.run(&["XACK", "s", "g", "1-1"]), int(0));
    assert_eq!(h.run(&["XPENDING", "s", "g"]), arr(vec![int(0), Frame::Null, Frame::Null, Frame::NullArray]));
    assert_eq!(h.run(&["SET", "str", "x"]), ok());
    assert_eq!(
        h.run(&["XACK", "str", "g", "1-1"]),
        err("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
}

#[test]
fn zero_padded_and_long_ids_parse_as_redis() {
    // Replies recorded from redis-server 7.0.15: digits up to 19 (any leading zeros), 20 digits up
    // to u64::MAX, an invalid ID in XACK answered only once the group is found.
    let mut h = Harness::new();
    assert_eq!(h.run(&["XADD", "s", "0000000000000000007-0000000000000000003", "a", "1"]), bulk("7-3"));
    assert_eq!(h.run(&["XADD", "s", "9999999999999999999-00012", "a", "1"]), bulk("9999999999999999999-12"));
    assert_eq!(h.run(&["XADD", "s", "18446744073709551615-000", "a", "1"]), bulk("18446744073709551615-0"));
    assert_eq!(
        h.run(&["XADD", "s", "18446744073709551616-0", "a", "1"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    assert_eq!(h.run(&["XADD", "t", "000000000012-0", "a", "1"]), bulk("12-0"));
    assert_eq!(h.run(&["XGROUP", "CREATE", "t", "g", "0"]), ok());
    assert_eq!(
        h.run(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "t", ">"]),
        arr(vec![arr(vec![bulk("t"), arr(vec![entry("12-0", &["a", "1"])])])])
    );
    assert_eq!(
        h.run(&["XACK", "t", "g", "0000000000000000000012-0", "12-x"]),
        err("ERR Invalid stream ID specified as stream command argument")
    );
    assert_eq!(h.run(&["XACK", "t", "nog", "12-x"]), int(0));
    assert_eq!(h.run(&["XACK", "t", "g", "000000000012-0000"]), int(1));
    assert_eq!(h.run(&["XACK", "t", "g", "12"]), int(0));
}
