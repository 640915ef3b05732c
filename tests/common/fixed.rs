//! Servers on fixed ports started from a config file, for the tests where a node must come back
//! at the same address (Sentinel, a primary restarted under its replicas) or where CONFIG REWRITE
//! needs a file; plus small polling helpers.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A redis-rs connection with timeouts.
pub fn conn(port: u16) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let c = c.get_connection_with_timeout(Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c
}

/// One command on a fresh connection; None on any failure (down, refused, error reply).
pub fn try_query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Option<T> {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut c = c.get_connection_with_timeout(Duration::from_secs(2)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c).ok()
}

/// Poll `ok` every 50 ms; panic after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out ({limit:?}) waiting for {what}");
}

/// `name:value` of an INFO text.
pub fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Option<Child>,
}

impl Proc {
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A flurrydb node started from `dir/node.conf` (so that CONFIG REWRITE has a file) on a port
/// fixed for its life (a restarted node is the same instance to its peers), appending its log to
/// `dir/log`.
pub struct Node {
    pub proc: Proc,
    pub port: u16,
    pub dir: PathBuf,
}

impl Node {
    /// `appendonly yes`, no RDB saves, `extra` config lines, `replicaof` the given port.
    pub fn start(dir: &Path, replica_of: Option<u16>, extra: &str) -> Node {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsave \"\"\nappendonly yes\nrepl-ping-replica-period 1\n{extra}",
            dir.display()
        );
        if let Some(p) = replica_of {
            conf.push_str(&format!("replicaof 127.0.0.1 {p}\n"));
        }
        std::fs::write(dir.join("node.conf"), conf).unwrap();
        let mut n = Node { proc: Proc { child: None }, port, dir: dir.to_path_buf() };
        n.launch();
        n
    }

    /// Start (again) on its config file; returns once it answers PING.
    pub fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_flurrydb-server"))
            .arg(self.dir.join("node.conf"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.proc.child = Some(child);
        let port = self.port;
        wait_for("the node to answer PING", Duration::from_secs(60), || {
            try_query::<String>(port, &["PING"]).as_deref() == Some("PONG")
        });
    }

    pub fn conf(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.conf")).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    pub fn info(&self, section: &str) -> String {
        try_query::<String>(self.port, &["INFO", section]).unwrap_or_default()
    }

    /// A replica of `primary` with its link up.
    pub fn follows(&self, primary: u16) -> bool {
        let i = self.info("replication");
        field(&i, "role").as_deref() == Some("slave")
            && field(&i, "master_port") == Some(primary.to_string())
            && field(&i, "master_link_status").as_deref() == Some("up")
    }
}

impl Node {
    /// `replicas` nodes under `root/r0..`, each `replicaof` `primary` with `extra` config lines;
    /// returns once every link is up.
    pub fn replicas_of(primary: &Node, root: &Path, replicas: usize, extra: &str) -> Vec<Node> {
        let nodes: Vec<Node> =
            (0..replicas).map(|i| Node::start(&root.join(format!("r{i}")), Some(primary.port), extra)).collect();
        for r in &nodes {
            wait_for("the replica's link", Duration::from_secs(30), || r.follows(primary.port));
        }
        nodes
    }
}

/// A primary under `root/p` with `primary_extra` config lines and one replica under `root/r0`
/// with `replica_extra`, its link up.
pub fn linked_pair(root: &Path, primary_extra: &str, replica_extra: &str) -> (Node, Node) {
    let primary = Node::start(&root.join("p"), None, primary_extra);
    let replica = Node::replicas_of(&primary, root, 1, replica_extra).pop().unwrap();
    (primary, replica)
}

/// SET `{prefix}{i}` to `i` for i in 0..n, one reply at a time.
pub fn set_numbered(c: &mut redis::Connection, prefix: &str, n: usize) {
    for i in 0..n {
        let _: () = redis::cmd("SET").arg(format!("{prefix}{i}")).arg(i).query(c).unwrap();
    }
}

/// WAIT for `replicas` acknowledgements (10 s) and assert they all came.
pub fn wait_acked(c: &mut redis::Connection, replicas: usize) {
    let n: i64 = redis::cmd("WAIT").arg(replicas).arg(10_000).query(c).unwrap();
    assert_eq!(n as usize, replicas, "not every replica acknowledged");
}
