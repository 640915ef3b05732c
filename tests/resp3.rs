//! RESP3 against the real server binary: HELLO switches a connection's protocol, and replies use
//! RESP3's types (null, map, set, verbatim) exactly as Redis 7.0 sends them; RESP2 clients see
//! the same bytes as ever.
#![cfg(not(feature = "loom"))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Server;

/// A raw connection that understands RESP3 reply framing (the shared `Raw` knows RESP2 only).
struct Resp3 {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Resp3 {
    fn connect(server: &Server) -> Resp3 {
        let s = server.raw().s;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Resp3 { s, buf: Vec::new() }
    }

    /// Send a command and return the raw bytes of its whole reply.
    fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.s.write_all(&out).unwrap();
        loop {
            if let Some(n) = reply_len(&self.buf, 0) {
                return self.buf.drain(..n).collect();
            }
            let mut tmp = [0u8; 65536];
            let n = self.s.read(&mut tmp).unwrap();
            assert!(n > 0, "closed; got so far: {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    fn text(&mut self, args: &[&str]) -> String {
        String::from_utf8(self.cmd(args)).unwrap()
    }
}

/// The length of the complete RESP2/RESP3 reply at `from`, if buffered.
fn reply_len(buf: &[u8], from: usize) -> Option<usize> {
    let end = from + buf.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
    let n: i64 = std::str::from_utf8(&buf[from + 1..end]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let items = match buf[from] {
        b'$' | b'=' | b'!' if n >= 0 => {
            let total = end + 2 + n as usize + 2;
            return (buf.len() >= total).then_some(total - from);
        }
        b'*' | b'~' | b'>' if n > 0 => n,
        b'%' if n > 0 => 2 * n,
        _ => return Some(end + 2 - from),
    };
    let mut pos = end + 2;
    for _ in 0..items {
        pos += reply_len(buf, pos)?;
    }
    Some(pos - from)
}

fn hello_map(proto: u8, id: &str) -> String {
    let head = if proto == 3 { "%7" } else { "*14" };
    format!(
        "{head}\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:{proto}\r\n\
         $2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    )
}

#[test]
fn hello_3_replies_a_map_and_switches_the_connection_until_hello_2() {
    let s = Server::start(&[]);
    let mut c = Resp3::connect(&s);
    let id = c.text(&["CLIENT", "ID"]).trim_start_matches(':').trim_end().to_string();
    assert_eq!(c.text(&["GET", "missing"]), "$-1\r\n", "RESP2 until HELLO 3");
    assert_eq!(c.text(&["HELLO", "3"]), hello_map(3, &id));
    assert_eq!(c.text(&["GET", "missing"]), "_\r\n");
    assert_eq!(c.text(&["LPOP", "missing", "2"]), "_\r\n", "the null array is the same null");
    assert_eq!(c.text(&["MGET", "missing", "x"]), "*2\r\n_\r\n_\r\n");
    assert_eq!(c.text(&["HELLO"]), hello_map(3, &id), "HELLO without a version keeps RESP3");
    assert_eq!(c.text(&["HELLO", "4"]), "-NOPROTO unsupported protocol version\r\n");
    assert_eq!(c.text(&["GET", "missing"]), "_\r\n", "a refused HELLO changes nothing");
    assert!(c.text(&["CLIENT", "INFO"]).ends_with(" resp=3\n\r\n"));
    assert_eq!(c.text(&["HELLO", "2"]), hello_map(2, &id));
    assert_eq!(c.text(&["GET", "missing"]), "$-1\r\n");
    assert_eq!(c.text(&["LPOP", "missing", "2"]), "*-1\r\n");
    assert!(c.text(&["CLIENT", "INFO"]).ends_with(" resp=2\n\r\n"));
}

#[test]
fn hello_3_with_auth_and_setname_authenticates_and_names_the_client() {
    let s = Server::start(&[]);
    assert_eq!(s.raw().cmds(&["CONFIG", "SET", "requirepass", "secret"]), b"+OK\r\n");
    let mut c = Resp3::connect(&s);
    assert!(c.text(&["GET", "a"]).starts_with("-NOAUTH "));
    assert_eq!(
        c.text(&["HELLO", "3", "AUTH", "default", "bad"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(c.text(&["HELLO", "3"]).starts_with("-NOAUTH HELLO must be called with the client already authenticated"));
    assert!(c.text(&["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "app"]).starts_with("%7\r\n"));
    assert_eq!(c.text(&["CLIENT", "GETNAME"]), "$3\r\napp\r\n");
    assert_eq!(c.text(&["GET", "a"]), "_\r\n");
}

#[test]
fn config_get_is_a_map_under_resp3_and_flat_pairs_under_resp2() {
    let s = Server::start(&[]);
    let mut c = Resp3::connect(&s);
    let pairs = "$9\r\nmaxmemory\r\n$1\r\n0\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n";
    assert_eq!(c.text(&["CONFIG", "GET", "maxmemory", "maxmemory-p*"]), format!("*4\r\n{pairs}"));
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.text(&["CONFIG", "GET", "maxmemory", "maxmemory-p*"]), format!("%2\r\n{pairs}"));
    assert_eq!(c.text(&["CONFIG", "GET", "nosuch"]), "%0\r\n");
}

#[test]
fn lcs_idx_is_a_map_under_resp3_and_flat_pairs_under_resp2() {
    // Bytes as redis-server 7.0.15 sends them.
    let s = Server::start(&[]);
    let mut c = Resp3::connect(&s);
    c.cmd(&["MSET", "a", "ohmytext", "b", "mynewtext"]);
    let matches = "$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n\
                   *2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n";
    assert_eq!(c.text(&["LCS", "a", "b", "IDX"]), format!("*4\r\n{matches}"));
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.text(&["LCS", "a", "b", "IDX"]), format!("%2\r\n{matches}"));
    assert_eq!(
        c.text(&["LCS", "a", "b", "IDX", "MINMATCHLEN", "3", "WITHMATCHLEN"]),
        "%2\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"
    );
    assert_eq!(c.text(&["LCS", "a", "b"]), "$6\r\nmytext\r\n");
}

#[test]
fn info_and_client_list_are_verbatim_text_under_resp3() {
    let s = Server::start(&[]);
    let mut c = Resp3::connect(&s);
    let resp2 = c.text(&["INFO", "keyspace"]);
    assert_eq!(resp2, "$12\r\n# Keyspace\r\n\r\n");
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.text(&["INFO", "keyspace"]), "=16\r\ntxt:# Keyspace\r\n\r\n");
    assert_eq!(c.text(&["INFO", "nosuch"]), "=4\r\ntxt:\r\n");
    assert_eq!(c.text(&["CLIENT", "LIST", "ID", "999999"]), "=4\r\ntxt:\r\n");
    let list = c.text(&["CLIENT", "LIST"]);
    assert!(list.starts_with('=') && list.contains("\r\ntxt:id=") && list.ends_with("resp=3\n\r\n"), "{list}");
    let info = c.text(&["CLIENT", "INFO"]);
    let (len, body) = info[1..].split_once("\r\n").unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), body.len() - 2, "the length counts `txt:` and the text");
}

#[test]
fn other_replies_keep_redis_types_under_resp3() {
    let s = Server::start(&[]);
    let mut c = Resp3::connect(&s);
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.text(&["INCRBYFLOAT", "f", "1.5"]), "$3\r\n1.5\r\n", "a bulk string, not a double");
    assert_eq!(c.text(&["RPUSH", "l", "a", "b"]), ":2\r\n");
    assert_eq!(c.text(&["LRANGE", "l", "0", "-1"]), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(c.text(&["LPOS", "l", "z"]), "_\r\n");
    assert_eq!(c.text(&["TTL", "l"]), ":-1\r\n");
    assert_eq!(c.text(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.text(&["GET", "nokey"]), "+QUEUED\r\n");
    assert_eq!(c.text(&["EXEC"]), "*1\r\n_\r\n");
    assert_eq!(
        c.text(&["COMMAND", "INFO", "get", "nosuch"]),
        "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@read\r\n+@string\r\n\
         +@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\n\
         type\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n\
         $5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n\
         ~0\r\n_\r\n",
        "Redis 7.0.15's bytes: the key spec is a set of maps"
    );
    assert_eq!(
        c.text(&["COMMAND", "DOCS", "get"]),
        "%1\r\n$3\r\nget\r\n%5\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n\
         $5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n%3\r\n$4\r\nname\r\n\
         $3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n"
    );
    let set_docs = c.text(&["COMMAND", "DOCS", "set"]);
    assert!(set_docs.contains("$7\r\nhistory\r\n~4\r\n*2\r\n$6\r\n2.6.12\r\n"), "history is a set of pairs");
    assert!(set_docs.contains("$5\r\nflags\r\n~1\r\n+optional\r\n"), "argument flags are sets");
}

#[test]
fn redis_rs_speaks_resp3_with_the_server() {
    let s = Server::start(&[]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/?protocol=resp3", s.port)).unwrap();
    let mut con = client.get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let missing: redis::Value = redis::cmd("GET").arg("nope").query(&mut con).unwrap();
    assert_eq!(missing, redis::Value::Nil);
    let cfg: redis::Value = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut con).unwrap();
    assert!(matches!(cfg, redis::Value::Map(ref m) if m.len() == 1), "{cfg:?}");
    let hello: redis::Value = redis::cmd("HELLO").arg("3").query(&mut con).unwrap();
    assert!(matches!(hello, redis::Value::Map(ref m) if m.len() == 7), "{hello:?}");
}
