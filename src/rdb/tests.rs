//! Round trips of every type and encoding through write_rdb/read_rdb and DUMP payloads, and
//! corrupt input.

use bytes::Bytes;

use super::load::{PayloadError, read_payload};
use super::save::dump_payload;
use super::*;
use crate::db::stream::{NodeLimits, Stream, StreamId};
use crate::db::{SnapshotEntry, SnapshotValue};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn sample_stream() -> Stream {
    let mut s = Stream::default();
    for i in 1..=250u64 {
        let pairs = if i % 7 == 0 {
            vec![b("other"), Bytes::from(format!("v{i}"))]
        } else {
            vec![b("f"), Bytes::from(i.to_string()), b("g"), Bytes::from("x".repeat((i % 50) as usize))]
        };
        s.append(StreamId::new(1000 + i / 3, i), &pairs, NodeLimits::default());
    }
    s.delete(StreamId::new(1001, 5));
    let mut g = crate::db::stream::Group::new(StreamId::new(1003, 10), 9);
    g.ensure_consumer(b"alice", 123);
    g.ensure_consumer(b"bob", 456);
    g.assign(StreamId::new(1001, 3), b"alice", 777, 2);
    g.assign(StreamId::new(1001, 4), b"bob", 778, 1);
    s.groups.insert(b("grp"), g);
    s.groups.insert(b("empty"), crate::db::stream::Group::new(StreamId::MIN, -1));
    s
}

/// Every type in small and large forms.
fn sample() -> Vec<SnapshotEntry> {
    let mut v = Vec::new();
    let mut add = |db: usize, k: &str, value: SnapshotValue, exp: u64| {
        v.push(SnapshotEntry { db, key: b(k), value, expire_at_ms: exp })
    };
    add(0, "s", SnapshotValue::Str(b("hello")), 0);
    add(0, "n", SnapshotValue::Int(-12345), 0);
    add(0, "big", SnapshotValue::Int(i64::MAX), 0);
    add(0, "long", SnapshotValue::Str(Bytes::from("abc".repeat(100))), 4_000_000_000_000);
    add(0, "bin", SnapshotValue::Str(Bytes::from((0..=255u8).collect::<Vec<_>>())), 0);
    add(0, "list", SnapshotValue::List(vec![b("a"), b("1"), b("-7000"), b("")]), 0);
    add(0, "biglist", SnapshotValue::List((0..5000).map(|i| Bytes::from(format!("item-{i}"))).collect()), 0);
    add(0, "hash", SnapshotValue::Hash(vec![(b("f"), b("v")), (b("n"), b("42"))]), 0);
    add(
        0,
        "bighash",
        SnapshotValue::Hash((0..600).map(|i| (Bytes::from(format!("f{i}")), Bytes::from(format!("v{i}")))).collect()),
        0,
    );
    add(0, "intset", SnapshotValue::Set(vec![b("3"), b("-1"), b("100000")]), 0);
    add(1, "set", SnapshotValue::Set(vec![b("x"), b("y"), b("1")]), 0);
    add(1, "zset", SnapshotValue::Zset(vec![(b("-inf"), b("a")), (b("1.5"), b("b")), (b("3"), b("c"))]), 0);
    let bigz: Vec<(Bytes, Bytes)> =
        (0..300).map(|i| (Bytes::from(format!("{}", i as f64 / 4.0)), Bytes::from(format!("m{i:04}")))).collect();
    add(1, "bigzset", SnapshotValue::Zset(bigz), 0);
    add(2, "stream", SnapshotValue::Stream(Box::new(sample_stream())), 5_000_000_000_000);
    v
}

fn normalize(v: &SnapshotValue) -> String {
    match v {
        SnapshotValue::Str(s) => format!("str {s:?}"),
        SnapshotValue::Int(n) => format!("str {:?}", Bytes::from(n.to_string())),
        SnapshotValue::List(x) => format!("list {x:?}"),
        SnapshotValue::Hash(x) => {
            let mut x = x.clone();
            x.sort();
            format!("hash {x:?}")
        }
        SnapshotValue::Set(x) => {
            let mut x = x.clone();
            x.sort();
            format!("set {x:?}")
        }
        SnapshotValue::Zset(x) => format!("zset {x:?}"),
        SnapshotValue::Stream(s) => {
            let groups: Vec<String> = s
                .groups
                .iter()
                .map(|(n, g)| {
                    format!(
                        "{n:?} {} {} {:?} {:?}",
                        g.last_id,
                        g.entries_read,
                        g.pel,
                        g.consumers.iter().map(|(c, x)| (c.clone(), x.seen_time, x.pel.clone())).collect::<Vec<_>>()
                    )
                })
                .collect();
            format!(
                "stream {:?} last {} added {} maxdel {} groups {groups:?}",
                s.range(StreamId::MIN, StreamId::MAX, 0, false),
                s.last_id,
                s.entries_added,
                s.max_deleted_id
            )
        }
    }
}

fn round_trip(aux: &Aux) {
    let entries = sample();
    let mut file = Vec::new();
    write_rdb(&mut file, &entries, aux).unwrap();
    assert_eq!(&file[..9], b"REDIS0010");
    let mut got = Vec::new();
    let info = read_rdb(&mut &file[..], |k| {
        got.push(k);
        Ok(())
    })
    .unwrap();
    assert_eq!(info.aux("redis-ver"), Some(&b"7.0.15"[..]));
    assert_eq!(info.functions, aux.functions);
    assert_eq!(got.len(), entries.len());
    for (e, g) in entries.iter().zip(&got) {
        assert_eq!((e.db, &e.key, e.expire_at_ms), (g.db, &g.key, g.expire_at_ms));
        assert_eq!(normalize(&e.value), normalize(&g.value), "key {:?}", e.key);
    }
}

#[test]
fn every_type_round_trips_through_a_file() {
    round_trip(&Aux::default());
    let mut aux = Aux {
        checksum: false,
        functions: vec![b("#!lua name=lib\nredis.register_function('f', function() return 1 end)")],
        ..Aux::default()
    };
    aux.opts.compress = false;
    round_trip(&aux);
    let mut small = Aux::default();
    small.opts.hash_max_listpack_entries = 0;
    small.opts.zset_max_listpack_entries = 0;
    small.opts.set_max_intset_entries = 0;
    small.opts.list_max_listpack_size = 3;
    small.opts.stream_node_max_entries = 5;
    round_trip(&small);
}

#[test]
fn every_type_round_trips_through_dump_payloads() {
    for e in sample() {
        let p = dump_payload(&e.value, &EncodeOpts::default());
        let v = read_payload(&p).unwrap();
        assert_eq!(normalize(&e.value), normalize(&v));
    }
}

#[test]
fn known_redis_payloads() {
    // DUMP output of redis-server 7.0.15 for SET k hello, SET a50 <50 x a>, HSET h a 1.
    let cases: [(SnapshotValue, &[u8]); 3] = [
        (SnapshotValue::Str(b("hello")), b"\x00\x05\x68\x65\x6c\x6c\x6f\x0a\x00\x63\x72\xdf\x76\x65\x34\x20\x0a"),
        (
            SnapshotValue::Str(Bytes::from("a".repeat(50))),
            b"\x00\xc3\x09\x32\x01\x61\x61\xe0\x25\x00\x01\x61\x61\x0a\x00\x09\xac\x48\xb9\xab\x15\xfb\xc9",
        ),
        (
            SnapshotValue::Hash(vec![(b("a"), b("1"))]),
            b"\x10\x0c\x0c\x00\x00\x00\x02\x00\x81\x61\x02\x01\x01\xff\x0a\x00\x84\xa6\x93\xe8\xaa\x17\xe4\xdb",
        ),
    ];
    for (v, want) in cases {
        assert_eq!(dump_payload(&v, &EncodeOpts::default()), want);
        assert_eq!(normalize(&read_payload(want).unwrap()), normalize(&v));
    }
}

#[test]
fn corrupt_payloads_are_refused() {
    let p = dump_payload(&SnapshotValue::Hash(vec![(b("f"), b("v"))]), &EncodeOpts::default());
    for cut in 0..p.len() {
        assert!(read_payload(&p[..cut]).is_err());
    }
    let mut bad = p.clone();
    bad[3] ^= 1;
    assert_eq!(read_payload(&bad).unwrap_err(), PayloadError::VersionOrChecksum);
    let mut newer = p.clone();
    let n = newer.len();
    newer[n - 10] = 11;
    assert_eq!(read_payload(&newer).unwrap_err(), PayloadError::VersionOrChecksum);
}

/// Re-seal a body with a valid footer so that the decoder, not the checksum, sees the damage.
fn seal(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64::crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

#[test]
fn damaged_bodies_never_panic() {
    for e in sample() {
        let p = dump_payload(&e.value, &EncodeOpts { compress: false, ..EncodeOpts::default() });
        let body = &p[..p.len() - 10];
        let mut seed = 0x1234_5678u64;
        for i in 0..400 {
            let mut d = body.to_vec();
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = (seed >> 33) as usize % d.len();
            d[at] = (seed >> 13) as u8;
            if i % 3 == 0 {
                d.truncate(at);
            }
            let _ = read_payload(&seal(&d));
        }
    }
}

#[test]
fn damaged_files_give_errors() {
    let mut file = Vec::new();
    write_rdb(&mut file, &sample(), &Aux::default()).unwrap();
    let n = file.len();
    let mut flipped = file.clone();
    flipped[n / 2] ^= 0x40;
    assert!(read_rdb(&mut &flipped[..], |_| Ok(())).is_err());
    let mut badsum = file.clone();
    badsum[n - 1] ^= 1;
    assert!(matches!(read_rdb(&mut &badsum[..], |_| Ok(())), Err(RdbError::BadChecksum)));
    for cut in [0, 5, 9, 20, n / 3, n - 9, n - 1] {
        assert!(read_rdb(&mut &file[..cut], |_| Ok(())).is_err(), "cut {cut}");
    }
    let mut v11 = file.clone();
    v11[5..9].copy_from_slice(b"0011");
    assert!(matches!(read_rdb(&mut &v11[..], |_| Ok(())), Err(RdbError::BadVersion(_))));
}
