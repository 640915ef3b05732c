use bytes::Bytes;

use crate::cmd::testing::{Harness, arr, bulk, err, int, ok};
use crate::cmd::{Client, Ctx, execute};
use crate::resp::Frame;

fn queued() -> Frame {
    Frame::simple("QUEUED")
}

/// Run a command as a second client of the harness's server.
fn run_as(h: &Harness, other: &mut Client, args: &[&str]) -> Frame {
    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    let mut ctx = Ctx::new(&h.shared, other, h.now_ms);
    execute(&mut ctx, &argv)
}

fn other(h: &Harness) -> Client {
    Client::new(h.shared.clients.register("127.0.0.1:2".into(), "127.0.0.1:6379".into()))
}

#[test]
fn multi_queues_and_exec_replies_with_every_reply() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["MULTI"]), ok());
    assert_eq!(h.run(&["SET", "a", "1"]), queued());
    assert_eq!(h.run(&["INCR", "a"]), queued());
    assert_eq!(h.run(&["GET", "a"]), queued());
    assert_eq!(h.run(&["GET", "b"]), queued());
    assert_eq!(h.run(&["EXEC"]), arr(vec![ok(), int(2), bulk("2"), Frame::Null]));
}

#[test]
fn nothing_runs_before_exec() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    h.run(&["SET", "a", "1"]);
    let mut o = other(&h);
    assert_eq!(run_as(&h, &mut o, &["GET", "a"]), Frame::Null);
    h.run(&["EXEC"]);
    assert_eq!(run_as(&h, &mut o, &["GET", "a"]), bulk("1"));
}

#[test]
fn nested_multi_is_an_error_that_does_not_abort() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["MULTI"]), err("ERR MULTI calls can not be nested"));
    assert_eq!(h.run(&["WATCH", "a"]), err("ERR WATCH inside MULTI is not allowed"));
    assert_eq!(h.run(&["INCR", "x"]), queued());
    assert_eq!(h.run(&["EXEC"]), arr(vec![int(1)]));
}

#[test]
fn exec_and_discard_without_multi_are_errors() {
    let mut h = Harness::new();
    assert_eq!(h.run(&["EXEC"]), err("ERR EXEC without MULTI"));
    assert_eq!(h.run(&["DISCARD"]), err("ERR DISCARD without MULTI"));
}

#[test]
fn empty_transaction_replies_empty_array() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![]));
}

#[test]
fn queue_time_errors_abort_exec() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["FOO", "x"]), err("ERR unknown command 'FOO', with args beginning with: 'x' "));
    assert_eq!(h.run(&["GET"]), err("ERR wrong number of arguments for 'get' command"));
    assert_eq!(h.run(&["SET", "a", "1"]), queued());
    assert_eq!(h.run(&["EXEC"]), err("EXECABORT Transaction discarded because of previous errors."));
    assert_eq!(h.run(&["GET", "a"]), Frame::Null);
    assert_eq!(h.run(&["EXEC"]), err("ERR EXEC without MULTI"));
}

#[test]
fn a_refused_exec_discards_the_transaction_and_says_why() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    h.run(&["SET", "a", "1"]);
    assert_eq!(
        h.run(&["EXEC", "x"]),
        err("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command")
    );
    assert_eq!(h.run(&["EXEC"]), err("ERR EXEC without MULTI"));
    assert_eq!(h.run(&["GET", "a"]), Frame::Null);
}

#[test]
fn no_multi_commands_are_refused_and_abort() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["SHUTDOWN"]), err("ERR Command not allowed inside a transaction"));
    assert_eq!(h.run(&["EXEC"]), err("EXECABORT Transaction discarded because of previous errors."));
}

#[test]
fn runtime_errors_are_entries_of_the_reply() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    h.run(&["SET", "a", "b"]);
    h.run(&["INCR", "a"]);
    h.run(&["LPUSH", "a", "x"]);
    assert_eq!(
        h.run(&["EXEC"]),
        arr(vec![
            ok(),
            err("ERR value is not an integer or out of range"),
            err("WRONGTYPE Operation against a key holding the wrong kind of value")
        ])
    );
}

#[test]
fn discard_drops_the_queue() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    h.run(&["SET", "x", "1"]);
    assert_eq!(h.run(&["DISCARD"]), ok());
    assert_eq!(h.run(&["GET", "x"]), Frame::Null);
}

#[test]
fn select_inside_multi_applies_at_exec_and_stays() {
    let mut h = Harness::new();
    h.run(&["MULTI"]);
    h.run(&["SELECT", "2"]);
    h.run(&["SET", "q", "1"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![ok(), ok()]));
    assert_eq!(h.run(&["GET", "q"]), bulk("1"));
    h.run(&["SELECT", "0"]);
    assert_eq!(h.run(&["GET", "q"]), Frame::Null);
}

#[test]
fn whole_db_commands_inside_exec_do_not_deadlock() {
    let mut h = Harness::new();
    h.run(&["SET", "a", "1"]);
    h.run(&["MULTI"]);
    h.run(&["DBSIZE"]);
    h.run(&["FLUSHALL"]);
    h.run(&["SET", "b", "2"]);
    h.run(&["SWAPDB", "0", "1"]);
    h.run(&["SELECT", "1"]);
    h.run(&["COPY", "b", "c", "DB", "0"]);
    h.run(&["MOVE", "b", "0"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![int(1), ok(), ok(), ok(), ok(), int(1), int(1)]));
    assert_eq!(h.run(&["DBSIZE"]), int(0));
}

#[test]
fn watched_key_written_by_another_client_fails_exec() {
    let mut h = Harness::new();
    let mut o = other(&h);
    assert_eq!(h.run(&["WATCH", "k"]), ok());
    run_as(&h, &mut o, &["SET", "k", "2"]);
    h.run(&["MULTI"]);
    h.run(&["SET", "k", "3"]);
    assert_eq!(h.run(&["EXEC"]), Frame::NullArray);
    assert_eq!(h.run(&["GET", "k"]), bulk("2"));
    // EXEC unwatched: the next transaction runs.
    h.run(&["MULTI"]);
    h.run(&["SET", "k", "3"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![ok()]));
}

#[test]
fn untouched_watch_lets_exec_run() {
    let mut h = Harness::new();
    let mut o = other(&h);
    h.run(&["WATCH", "k"]);
    run_as(&h, &mut o, &["SET", "other", "2"]);
    run_as(&h, &mut o, &["DEL", "k"]);
    h.run(&["MULTI"]);
    h.run(&["PING"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![Frame::simple("PONG")]));
}

#[test]
fn watch_is_per_database() {
    let mut h = Harness::new();
    let mut o = other(&h);
    h.run(&["SELECT", "3"]);
    h.run(&["WATCH", "k"]);
    run_as(&h, &mut o, &["SET", "k", "2"]);
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![]));
}

#[test]
fn unwatch_and_discard_forget_watches() {
    let mut h = Harness::new();
    let mut o = other(&h);
    h.run(&["WATCH", "k"]);
    run_as(&h, &mut o, &["SET", "k", "2"]);
    assert_eq!(h.run(&["UNWATCH"]), ok());
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![]));
    h.run(&["WATCH", "k"]);
    run_as(&h, &mut o, &["SET", "k", "3"]);
    h.run(&["MULTI"]);
    h.run(&["DISCARD"]);
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![]));
}

#[test]
fn own_write_after_watch_fails_exec() {
    let mut h = Harness::new();
    h.run(&["WATCH", "k"]);
    h.run(&["SET", "k", "1"]);
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), Frame::NullArray);
}

fn watch_then(setup: &[&[&str]], by_other: &[&[&str]]) -> Frame {
    let mut h = Harness::new();
    let mut o = other(&h);
    for c in setup {
        h.run(c);
    }
    h.run(&["WATCH", "k"]);
    for c in by_other {
        run_as(&h, &mut o, c);
    }
    h.run(&["MULTI"]);
    h.run(&["PING"]);
    h.run(&["EXEC"])
}

#[test]
fn watch_sees_the_changes_redis_signals() {
    let pong = arr(vec![Frame::simple("PONG")]);
    let fail = Frame::NullArray;
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["SET", "k", "1"]]), fail, "same-value SET");
    assert_eq!(watch_then(&[], &[&["FLUSHALL"]]), pong, "FLUSHALL of a missing key");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["FLUSHALL"]]), fail, "FLUSHALL");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["FLUSHDB"]]), fail, "FLUSHDB");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["SELECT", "1"], &["FLUSHDB"]]), pong, "FLUSHDB elsewhere");
    assert_eq!(watch_then(&[], &[&["SWAPDB", "0", "1"]]), pong, "SWAPDB, key in neither");
    assert_eq!(watch_then(&[], &[&["SELECT", "1"], &["SET", "k", "1"], &["SWAPDB", "0", "1"]]), fail, "SWAPDB");
    assert_eq!(watch_then(&[&["SET", "z", "1"]], &[&["RENAME", "z", "k"]]), fail, "RENAME to");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["RENAME", "k", "z"]]), fail, "RENAME from");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["EXPIRE", "k", "100"]]), fail, "EXPIRE");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["PERSIST", "k"]]), pong, "PERSIST no-op");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["MOVE", "k", "1"]]), fail, "MOVE from");
    assert_eq!(watch_then(&[], &[&["SELECT", "1"], &["SET", "k", "1"], &["MOVE", "k", "0"]]), fail, "MOVE into");
    assert_eq!(watch_then(&[&["SET", "z", "1"]], &[&["COPY", "z", "k"]]), fail, "COPY into");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["COPY", "k", "z"]]), pong, "COPY from");
    assert_eq!(watch_then(&[], &[&["LPUSH", "k", "a"]]), fail, "LPUSH");
    assert_eq!(watch_then(&[&["SET", "k", "1"]], &[&["INCR", "k"]]), fail, "INCR fast path");
    assert_eq!(watch_then(&[], &[&["MSET", "a", "1", "k", "2"]]), fail, "MSET");
    assert_eq!(watch_then(&[], &[&["SELECT", "1"], &["INCR", "k"]]), pong, "INCR in another db");
}

#[test]
fn watched_key_that_expires_fails_exec() {
    let mut h = Harness::new();
    h.run(&["SET", "k", "1", "PX", "50"]);
    h.run(&["WATCH", "k"]);
    h.now_ms += 100;
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), Frame::NullArray);
}

#[test]
fn watched_key_deleted_by_active_expiry_fails_exec() {
    let mut h = Harness::new();
    h.run(&["SET", "k", "1", "PX", "50"]);
    h.run(&["WATCH", "k"]);
    h.now_ms += 100;
    assert_eq!(h.shared.ks.expire_cycle(h.now_ms, 100), 1);
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), Frame::NullArray);
}

#[test]
fn key_already_expired_at_watch_time_is_not_a_change_when_deleted() {
    let mut h = Harness::new();
    h.run(&["SET", "k", "1", "PX", "50"]);
    h.now_ms += 100;
    h.run(&["WATCH", "k"]);
    assert_eq!(h.shared.ks.expire_cycle(h.now_ms, 100), 1);
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![]));
    // ... but setting it is.
    h.run(&["SET", "k", "1", "PX", "50"]);
    h.now_ms += 100;
    h.run(&["WATCH", "k"]);
    h.run(&["SET", "k", "2"]);
    h.run(&["MULTI"]);
    assert_eq!(h.run(&["EXEC"]), Frame::NullArray);
}

#[test]
fn dropping_a_client_unregisters_its_watches() {
    let h = Harness::new();
    let mut o = other(&h);
    run_as(&h, &mut o, &["WATCH", "k", "j"]);
    drop(o);
    assert!(h.shared.ks.watch_registry_is_idle());
}

#[test]
fn exec_inside_loader_uses_each_record_db() {
    // The AOF loader passes every record with its db and now_ms == 0.
    let mut h = Harness::new();
    h.now_ms = 0;
    h.client.db = 0;
    h.run(&["MULTI"]);
    h.client.db = 1;
    h.run(&["SET", "a", "1"]);
    h.client.db = 0;
    h.run(&["SET", "b", "2"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![ok(), ok()]));
    h.now_ms = 1_700_000_000_000;
    assert_eq!(h.run(&["GET", "b"]), bulk("2"));
    h.run(&["SELECT", "1"]);
    assert_eq!(h.run(&["GET", "a"]), bulk("1"));
}

#[test]
fn record_keys_follow_the_table_with_move_and_copy_exceptions() {
    let collect = |argv: &[&[u8]]| {
        let mut v = Vec::new();
        crate::cmd::record_keys(argv, 5, |db, k| v.push((db, String::from_utf8_lossy(k).into_owned())));
        v
    };
    let s = |db: usize, k: &str| (db, k.to_string());
    assert_eq!(collect(&[b"MSET", b"a", b"1", b"b", b"2"]), vec![s(5, "a"), s(5, "b")]);
    assert_eq!(collect(&[b"DEL", b"a", b"b"]), vec![s(5, "a"), s(5, "b")]);
    assert_eq!(collect(&[b"MOVE", b"a", b"2"]), vec![s(5, "a"), s(2, "a")]);
    assert_eq!(collect(&[b"COPY", b"a", b"b", b"DB", b"3", b"REPLACE"]), vec![s(3, "b")]);
    assert_eq!(collect(&[b"FLUSHALL"]), vec![]);
    assert_eq!(collect(&[b"ZRANGESTORE", b"dst", b"src", b"0", b"-1"]), vec![s(5, "dst")]);
    assert_eq!(collect(&[b"ZUNIONSTORE", b"dst", b"2", b"a", b"b"]), vec![s(5, "dst")]);
}

#[test]
fn sort_store_dirties_its_destination_not_its_source() {
    let mut h = Harness::new();
    let mut o = other(&h);
    h.run(&["RPUSH", "l", "2", "1"]);
    assert_eq!(h.run(&["WATCH", "l"]), ok());
    assert_eq!(run_as(&h, &mut o, &["SORT", "l", "STORE", "d"]), int(2));
    h.run(&["MULTI"]);
    h.run(&["SORT", "l", "DESC", "STORE", "d2"]);
    h.run(&["LRANGE", "d2", "0", "-1"]);
    assert_eq!(h.run(&["EXEC"]), arr(vec![int(2), arr(vec![bulk("2"), bulk("1")])]));
    assert_eq!(h.run(&["WATCH", "d"]), ok());
    assert_eq!(run_as(&h, &mut o, &["SORT", "l", "DESC", "STORE", "d"]), int(2));
    h.run(&["MULTI"]);
    h.run(&["SET", "x", "1"]);
    assert_eq!(h.run(&["EXEC"]), Frame::NullArray);
    assert_eq!(h.run(&["LRANGE", "d", "0", "-1"]), arr(vec![bulk("2"), bulk("1")]));
}

#[test]
fn exec_holds_every_stripe_for_commands_whose_keys_the_table_cannot_locate() {
    // ZUNIONSTORE's table range is only its destination; its sources come after numkeys.
    for name in ["zunionstore", "zinterstore", "zdiffstore", "sort", "lmpop", "zmpop", "sintercard"] {
        let spec = crate::cmd::lookup(name.as_bytes()).unwrap();
        assert!(super::needs_every_stripe(spec), "{name}");
    }
    for name in ["set", "sinterstore", "zrangestore", "lmove"] {
        assert!(!super::needs_every_stripe(crate::cmd::lookup(name.as_bytes()).unwrap()), "{name}");
    }
}
