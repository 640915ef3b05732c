//! Loading in bulk (db::map's `bulk`): the AOF loader puts runs of plain SETs in batches and the
//! RDB loader puts every key in batches; both must rebuild exactly what one-by-one replay would.
#![cfg(not(feature = "loom"))]
mod common;

use common::{Server, enc};

fn get(c: &mut common::Raw, args: &[&str]) -> String {
    String::from_utf8_lossy(&c.cmds(args)).into_owned()
}

/// A hand-made AOF whose plain SET runs interleave with records that read or change the same
/// keys (INCR, APPEND, RPUSH, PEXPIREAT, a MULTI block, SELECT), and runs long enough to be put
/// in several batches: the restarted server holds what replaying the records in order gives.
#[test]
fn aof_set_runs_replay_in_order_with_the_records_between_them() {
    let dir = common::temp_dir("bulk-aof");
    let mut aof = Vec::new();
    let mut rec = |args: &[&str]| {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        aof.extend_from_slice(&enc(&a));
    };
    rec(&["SET", "a", "1"]);
    rec(&["SET", "b", "x"]);
    rec(&["INCR", "a"]); // reads the run's a: 2
    rec(&["APPEND", "b", "y"]); // xy
    rec(&["SET", "dup", "1"]);
    rec(&["SET", "dup", "2"]); // the later SET of a run wins
    rec(&["RPUSH", "l", "x"]);
    rec(&["SET", "l", "now a string"]); // a SET over a list
    rec(&["SET", "t", "v"]);
    rec(&["PEXPIREAT", "t", "99999999999999"]);
    rec(&["SET", "t", "v2"]); // a plain SET clears the TTL
    rec(&["SET", "keep", "v"]);
    rec(&["PEXPIREAT", "keep", "99999999999999"]);
    rec(&["MULTI"]);
    rec(&["SET", "m", "5"]); // inside MULTI: applied with the block
    rec(&["INCR", "m"]);
    rec(&["EXEC"]);
    // Runs of 150k keys: several batches, the parts growing between them.
    for i in 0..150_000 {
        rec(&["SET", &format!("k:{i}"), &format!("v{i}")]);
    }
    rec(&["INCRBY", "k:7", "1"]); // not an integer: an error replay counts and goes on
    rec(&["SELECT", "1"]);
    rec(&["SET", "a", "db1"]);
    rec(&["SET", "k:5", "db1"]);
    rec(&["SELECT", "0"]);
    for i in (0..150_000).step_by(3) {
        rec(&["SET", &format!("k:{i}"), &format!("w{i}")]);
    }
    rec(&["SET", "n", "41"]);
    rec(&["INCR", "n"]);
    rec(&["SET", "last", "run at the end of the file"]);
    std::fs::write(dir.join("appendonly.aof"), &aof).unwrap();

    let s = Server::start_in(dir, &["--appendonly", "yes"]);
    let mut c = s.raw();
    assert_eq!(get(&mut c, &["GET", "a"]), "$1\r\n2\r\n");
    assert_eq!(get(&mut c, &["GET", "b"]), "$2\r\nxy\r\n");
    assert_eq!(get(&mut c, &["GET", "dup"]), "$1\r\n2\r\n");
    assert_eq!(get(&mut c, &["TYPE", "l"]), "+string\r\n");
    assert_eq!(get(&mut c, &["GET", "t"]), "$2\r\nv2\r\n");
    assert_eq!(get(&mut c, &["PTTL", "t"]), ":-1\r\n");
    assert_eq!(get(&mut c, &["PEXPIRETIME", "keep"]), ":99999999999999\r\n");
    assert_eq!(get(&mut c, &["GET", "m"]), "$1\r\n6\r\n");
    assert_eq!(get(&mut c, &["GET", "n"]), "$2\r\n42\r\n");
    assert_eq!(get(&mut c, &["GET", "last"]), "$26\r\nrun at the end of the file\r\n");
    for i in [0usize, 1, 2, 3, 5, 7, 99_999, 149_998, 149_999] {
        let want = if i % 3 == 0 { format!("w{i}") } else { format!("v{i}") };
        assert_eq!(get(&mut c, &["GET", &format!("k:{i}")]), format!("${}\r\n{want}\r\n", want.len()), "k:{i}");
    }
    // a b dup l t keep m n last + 150k.
    assert_eq!(get(&mut c, &["DBSIZE"]), ":150009\r\n");
    assert_eq!(get(&mut c, &["INFO", "keyspace"]).contains("db0:keys=150009,expires=1,"), true);
    get(&mut c, &["SELECT", "1"]);
    assert_eq!(get(&mut c, &["GET", "a"]), "$3\r\ndb1\r\n");
    assert_eq!(get(&mut c, &["DBSIZE"]), ":2\r\n");
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// An RDB of more keys than one batch, in two databases, with TTLs and collections, loads back
/// key for key (counts, expiries, values).
#[test]
fn rdb_of_several_batches_loads_back_key_for_key() {
    let mut s = Server::start(&["--appendonly", "no"]);
    let mut c = s.raw();
    let mut cmds: Vec<Vec<u8>> = Vec::new();
    let n = 140_000;
    for i in 0..n {
        let (k, v) = (format!("k:{i}"), format!("v{i}"));
        match i % 10 {
            0 => cmds.push(enc(&[b"SET", k.as_bytes(), v.as_bytes(), b"PXAT", b"99999999999999"])),
            1 => cmds.push(enc(&[b"RPUSH", k.as_bytes(), v.as_bytes(), b"b"])),
            2 => cmds.push(enc(&[b"SET", k.as_bytes(), i.to_string().as_bytes()])),
            _ => cmds.push(enc(&[b"SET", k.as_bytes(), v.as_bytes()])),
        }
    }
    cmds.push(enc(&[b"SELECT", b"2"]));
    for i in 0..1000 {
        cmds.push(enc(&[b"SET", format!("k:{i}").as_bytes(), b"db2"]));
    }
    // In slices, reading the replies between them (no deadlock on full socket buffers).
    for chunk in cmds.chunks(5000) {
        c.send(&chunk.concat());
        for _ in chunk {
            c.reply();
        }
    }
    let mut c = s.raw();
    assert_eq!(get(&mut c, &["SAVE"]), "+OK\r\n");
    s.stop();
    s.restart();
    let mut c = s.raw();
    assert_eq!(get(&mut c, &["DBSIZE"]), format!(":{n}\r\n"));
    let info = get(&mut c, &["INFO", "keyspace"]);
    assert!(info.contains(&format!("db0:keys={n},expires={},", n / 10)), "{info}");
    assert!(info.contains("db2:keys=1000,expires=0,"), "{info}");
    for i in (0..n).step_by(997).chain([n - 1]) {
        let k = format!("k:{i}");
        match i % 10 {
            0 => assert_eq!(get(&mut c, &["PEXPIRETIME", &k]), ":99999999999999\r\n", "{k}"),
            1 => assert_eq!(get(&mut c, &["LLEN", &k]), ":2\r\n", "{k}"),
            2 => assert_eq!(get(&mut c, &["OBJECT", "ENCODING", &k]), "$3\r\nint\r\n", "{k}"),
            _ => assert_eq!(get(&mut c, &["GET", &k]), format!("${}\r\nv{i}\r\n", format!("v{i}").len()), "{k}"),
        }
    }
    get(&mut c, &["SELECT", "2"]);
    assert_eq!(get(&mut c, &["GET", "k:999"]), "$3\r\ndb2\r\n");
    s.stop();
    let _ = std::fs::remove_dir_all(&s.dir);
}
