use crate::cmd::testing::{Harness, arr, bulk, err, int};
use crate::resp::Frame;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn sorted(f: Frame) -> Vec<Frame> {
    let mut items = match f {
        Frame::Array(v) | Frame::Set(v) => v,
        other => panic!("{other:?}"),
    };
    items.sort_by_key(|f| format!("{f:?}"));
    items
}

fn bulks(items: &[&str]) -> Vec<Frame> {
    items.iter().map(|s| bulk(s)).collect()
}

#[test]
fn sadd_srem_count_changes_and_the_emptied_set_is_removed() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["SADD", "s", "a", "b", "a"]), int(2));
    assert_eq!(h.run(&["SADD", "s", "b", "c"]), int(1));
    assert_eq!(h.run(&["SCARD", "s"]), int(3));
    assert_eq!(h.run(&["SREM", "s", "a", "zz"]), int(1));
    assert_eq!(h.run(&["SISMEMBER", "s", "b"]), int(1));
    assert_eq!(h.run(&["SMISMEMBER", "s", "a", "b", "c"]), arr(vec![int(0), int(1), int(1)]));
    assert_eq!(h.run(&["SREM", "s", "b", "c"]), int(2));
    assert_eq!(h.run(&["EXISTS", "s"]), int(0));
    assert_eq!(h.run(&["SMEMBERS", "s"]), Frame::Set(vec![]));
    assert_eq!(h.run(&["SMISMEMBER", "s", "a"]), arr(vec![int(0)]));
}

#[test]
fn smove_moves_creates_and_checks_types_as_redis() {
    let mut h = Harness::new();
    h.run(&["SADD", "a", "x", "y"]);
    assert_eq!(h.run(&["SMOVE", "a", "b", "x"]), int(1));
    assert_eq!(h.run(&["SMOVE", "a", "b", "nope"]), int(0));
    assert_eq!(sorted(h.run(&["SMEMBERS", "b"])), bulks(&["x"]));
    assert_eq!(h.run(&["SMOVE", "a", "a", "y"]), int(1));
    assert_eq!(h.run(&["SMOVE", "a", "b", "y"]), int(1));
    assert_eq!(h.run(&["EXISTS", "a"]), int(0), "the emptied source is removed");
    h.run(&["SET", "str", "v"]);
    assert_eq!(h.run(&["SMOVE", "missing", "str", "x"]), int(0), "a missing source answers first");
    assert_eq!(h.run(&["SMOVE", "b", "str", "x"]), err(WRONGTYPE));
}

#[test]
fn spop_pops_members_and_the_whole_set() {
    let mut h = Harness::new();
    h.run(&["SADD", "s", "a", "b", "c"]);
    let Frame::Bulk(one) = h.run(&["SPOP", "s"]) else { panic!() };
    assert_eq!(h.run(&["SISMEMBER", "s", std::str::from_utf8(&one).unwrap()]), int(0));
    assert_eq!(sorted(h.run(&["SPOP", "s", "1"])).len(), 1);
    assert_eq!(h.run(&["SPOP", "s", "0"]), Frame::Set(vec![]));
    assert_eq!(sorted(h.run(&["SPOP", "s", "5"])).len(), 1);
    assert_eq!(h.run(&["EXISTS", "s"]), int(0));
    assert_eq!(h.run(&["SPOP", "s"]), Frame::Null);
    assert_eq!(h.run(&["SPOP", "s", "-1"]), err("ERR value is out of range, must be positive"));
    assert_eq!(h.run(&["SPOP", "s", "1", "2"]), err("ERR syntax error"));
}

#[test]
fn srandmember_counts_follow_redis() {
    let mut h = Harness::new();
    h.run(&["SADD", "s", "a", "b", "c"]);
    assert_eq!(sorted(h.run(&["SRANDMEMBER", "s", "10"])), bulks(&["a", "b", "c"]));
    assert_eq!(sorted(h.run(&["SRANDMEMBER", "s", "2"])).len(), 2);
    assert_eq!(sorted(h.run(&["SRANDMEMBER", "s", "-5"])).len(), 5);
    assert_eq!(h.run(&["SRANDMEMBER", "nokey"]), Frame::Null);
    assert_eq!(
        h.run(&["SRANDMEMBER", "s", "-9223372036854775808"]),
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
}

#[test]
fn inter_union_diff_and_their_store_forms() {
    let mut h = Harness::new();
    h.run(&["SADD", "a", "1", "2", "3"]);
    h.run(&["SADD", "b", "2", "3", "4"]);
    assert_eq!(sorted(h.run(&["SINTER", "a", "b"])), bulks(&["2", "3"]));
    assert_eq!(sorted(h.run(&["SUNION", "a", "b", "nokey"])), bulks(&["1", "2", "3", "4"]));
    assert_eq!(sorted(h.run(&["SDIFF", "a", "b"])), bulks(&["1"]));
    assert_eq!(sorted(h.run(&["SDIFF", "a", "a"])), bulks(&[]));
    assert_eq!(sorted(h.run(&["SINTER", "a", "nokey"])), bulks(&[]));
    assert_eq!(h.run(&["SINTERSTORE", "d", "a", "b"]), int(2));
    assert_eq!(sorted(h.run(&["SMEMBERS", "d"])), bulks(&["2", "3"]));
    h.run(&["SET", "str", "v"]);
    assert_eq!(h.run(&["SINTER", "nokey", "str"]), err(WRONGTYPE), "types are checked before the empty shortcut");
    assert_eq!(h.run(&["SUNIONSTORE", "str", "a"]), int(3), "the destination may hold any type");
    assert_eq!(h.run(&["SDIFFSTORE", "d", "a", "a"]), int(0));
    assert_eq!(h.run(&["EXISTS", "d"]), int(0), "an empty result deletes the destination");
    assert_eq!(h.run(&["SINTERCARD", "2", "a", "b"]), int(2));
    assert_eq!(h.run(&["SINTERCARD", "2", "a", "b", "LIMIT", "1"]), int(1));
    assert_eq!(h.run(&["SINTERCARD", "0", "a"]), err("ERR numkeys should be greater than 0"));
    assert_eq!(h.run(&["SINTERCARD", "3", "a"]), err("ERR Number of keys can't be greater than number of args"));
    assert_eq!(h.run(&["SINTERCARD", "1", "a", "LIMIT", "-1"]), err("ERR LIMIT can't be negative"));
    assert_eq!(h.run(&["SINTERCARD", "1", "a", "BOGUS"]), err("ERR syntax error"));
}

#[test]
fn sscan_visits_every_member_and_filters_by_match() {
    let mut h = Harness::new();
    for i in 0..50 {
        h.run(&["SADD", "s", &format!("m{i}")]);
    }
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let Frame::Array(reply) = h.run(&["SSCAN", "s", &cursor, "MATCH", "m1*", "COUNT", "5"]) else { panic!() };
        let [Frame::Bulk(next), Frame::Array(items)] = &reply[..] else { panic!("{reply:?}") };
        seen.extend(items.iter().cloned());
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    let mut want: Vec<Frame> =
        (0..50).map(|i| format!("m{i}")).filter(|m| m.starts_with("m1")).map(|m| bulk(&m)).collect();
    want.sort_by_key(|f| format!("{f:?}"));
    seen.sort_by_key(|f| format!("{f:?}"));
    assert_eq!(seen, want);
    h.run(&["SET", "str", "v"]);
    assert_eq!(h.run(&["SSCAN", "str", "0", "COUNT", "0"]), err(WRONGTYPE));
}

#[test]
fn type_scan_type_and_wrongtype_from_other_families() {
    let mut h = Harness::new();
    h.run(&["SADD", "s", "a"]);
    assert_eq!(h.run(&["TYPE", "s"]), Frame::Simple("set".into()));
    assert_eq!(h.run(&["LPUSH", "s", "x"]), err(WRONGTYPE));
    assert_eq!(h.run(&["HGET", "s", "x"]), err(WRONGTYPE));
    assert_eq!(h.run(&["GET", "s"]), err(WRONGTYPE));
    let Frame::Array(reply) = h.run(&["SCAN", "0", "TYPE", "set", "COUNT", "100"]) else { panic!() };
    assert_eq!(reply[1], arr(vec![bulk("s")]));
}

#[test]
fn sscan_of_a_large_set_takes_a_bounded_number_of_calls_whatever_count() {
    let mut h = Harness::new();
    let mut sadd = vec!["SADD".to_string(), "s".into()];
    sadd.extend((0..3200).map(|i| format!("m{i}")));
    let args: Vec<&str> = sadd.iter().map(String::as_str).collect();
    assert_eq!(h.run(&args), int(3200));
    let (mut cursor, mut calls, mut seen) = ("0".to_string(), 0, std::collections::HashSet::new());
    loop {
        let Frame::Array(reply) = h.run(&["SSCAN", "s", &cursor, "COUNT", "1"]) else { panic!() };
        let [Frame::Bulk(next), Frame::Array(items)] = &reply[..] else { panic!("{reply:?}") };
        seen.extend(items.iter().cloned().map(|f| format!("{f:?}")));
        calls += 1;
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 3200);
    assert!(calls <= 33, "{calls} calls");
}
