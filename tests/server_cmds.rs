//! Connection and server commands against the real server: exact bytes where they matter, a real
//! client crate for the rest, and SHUTDOWN ending the process cleanly.
#![cfg(not(feature = "loom"))]
mod common;

use std::time::{Duration, Instant};

use common::Server;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn ping_echo_select_reply_the_exact_redis_bytes() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["PING"]), b"+PONG\r\n");
    assert_eq!(c.cmds(&["PING", "hello"]), b"$5\r\nhello\r\n");
    assert_eq!(c.cmds(&["ECHO", "a\r\nb"]), b"$4\r\na\r\nb\r\n");
    assert_eq!(c.cmds(&["ECHO"]), b"-ERR wrong number of arguments for 'echo' command\r\n");
    assert_eq!(c.cmds(&["SELECT", "16"]), b"-ERR DB index is out of range\r\n");
    assert_eq!(c.cmds(&["SELECT", "x"]), b"-ERR value is not an integer or out of range\r\n");
    assert_eq!(c.cmds(&["SET", "k", "db0"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(c.cmds(&["SELECT", "0"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["GET", "k"]), b"$3\r\ndb0\r\n");
    c.send(b"PING\r\n");
    assert_eq!(c.reply(), b"+PONG\r\n");
}

#[test]
fn quit_replies_ok_then_closes_the_connection() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    c.send(b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n");
    assert_eq!(c.read_to_close(), b"+OK\r\n", "nothing after QUIT is answered");
}

#[test]
fn hello_replies_the_resp2_map_and_refuses_unknown_versions() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let id = text(&c.cmds(&["CLIENT", "ID"]));
    let id = id.trim_start_matches(':').trim_end();
    let expected = format!(
        "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:{id}\r\n\
         $4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    );
    assert_eq!(text(&c.cmds(&["HELLO"])), expected);
    assert_eq!(text(&c.cmds(&["HELLO", "2"])), expected);
    assert_eq!(c.cmds(&["HELLO", "4"]), b"-NOPROTO unsupported protocol version\r\n");
}

#[test]
fn client_setname_shows_in_client_list() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.raw();
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("alpha").query(&mut a).unwrap();
    let name: Option<String> = redis::cmd("CLIENT").arg("GETNAME").query(&mut a).unwrap();
    assert_eq!(name.as_deref(), Some("alpha"));
    assert_eq!(
        b.cmds(&["CLIENT", "SETNAME", "has space"]),
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(b.cmds(&["CLIENT", "xyz"]), b"-ERR unknown subcommand 'xyz'. Try CLIENT HELP.\r\n");
    assert_eq!(b.cmds(&["CLIENT", "SETNAME"]), b"-ERR wrong number of arguments for 'client|setname' command\r\n");
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut a).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    let mine = lines.iter().find(|l| l.contains(" name=alpha ")).expect("named client listed");
    assert!(mine.contains(" cmd=client|list ") && mine.contains(" flags=N db=0 "), "{mine}");
    assert!(mine.contains(&format!(" laddr=127.0.0.1:{} ", s.port)), "{mine}");
    let fd: i64 = mine.split(" fd=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(fd > 2, "{mine}");
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut a).unwrap();
    assert!(info.contains(" name=alpha ") && info.ends_with("resp=2\n"), "{info}");
}

#[test]
fn config_set_then_get_roundtrips() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("10mb").arg("hz").arg("20").query(&mut c).unwrap();
    let got: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").arg("hz").query(&mut c).unwrap();
    assert_eq!(got, ["maxmemory", "10485760", "hz", "20"]);
    let port: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("port").query(&mut c).unwrap();
    assert_eq!(port, ["port", &s.port.to_string()]);
    let mut r = s.raw();
    assert_eq!(
        r.cmds(&["CONFIG", "SET", "xyz", "1"]),
        b"-ERR Unknown option or number of arguments for CONFIG SET - 'xyz'\r\n"
    );
    assert_eq!(
        r.cmds(&["CONFIG", "SET", "databases", "2"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n"
    );
    assert_eq!(r.cmds(&["CONFIG", "REWRITE"]), b"-ERR The server is running without a config file\r\n");
}

#[test]
fn info_has_every_default_section_and_keyspace_after_writes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let info: String = redis::cmd("INFO").query(&mut c).unwrap();
    for section in ["Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Keyspace"] {
        assert!(info.contains(&format!("# {section}\r\n")), "{section} missing");
    }
    assert!(info.contains(&format!("tcp_port:{}\r\n", s.port)));
    assert!(!info.contains("db0:"));
    let _: () = redis::cmd("SET").arg("a").arg("1").query(&mut c).unwrap();
    let _: () = redis::cmd("SET").arg("b").arg("1").arg("EX").arg(100).query(&mut c).unwrap();
    let ks: String = redis::cmd("INFO").arg("keyspace").query(&mut c).unwrap();
    assert_eq!(ks, "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n");
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    let connections = stats.lines().find_map(|l| l.strip_prefix("total_connections_received:")).unwrap();
    assert!(connections.trim().parse::<u64>().unwrap() >= 2, "{stats}");
}

#[test]
fn command_count_equals_the_table_and_info_describes_get() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let n: usize = redis::cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    assert_eq!(n, flurrydb::cmd::COMMANDS.len());
    let all: Vec<redis::Value> = redis::cmd("COMMAND").query(&mut c).unwrap();
    assert_eq!(all.len(), n);
    let mut r = s.raw();
    assert_eq!(
        r.cmds(&["COMMAND", "INFO", "get"]),
        b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n\
          *1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n\
          $4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n\
          *6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n",
        "Redis 7.0.15's bytes, key spec included"
    );
}

#[test]
fn shutdown_closes_the_connection_without_reply_and_exits_zero() {
    let mut s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["SHUTDOWN", "ABORT"]), b"-ERR No shutdown in progress.\r\n");
    c.send(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    assert_eq!(c.read_to_close(), b"");
    let mut child = s.child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "server did not exit after SHUTDOWN");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "log: {}", s.log());
}

#[test]
fn bgrewriteaof_rewrites_with_appendonly_and_is_refused_without() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(
        c.cmds(&["BGREWRITEAOF"]),
        b"-ERR Background append only file rewriting is only available with appendonly yes\r\n"
    );
    let s = Server::start(&["--appendonly", "yes"]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["BGREWRITEAOF"]), b"+Background append only file rewriting started\r\n");
}
