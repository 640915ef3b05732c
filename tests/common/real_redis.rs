//! The reference: a real redis-server 7.0 child for the tests that compare with it. Every such
//! test skips itself (gets `None`) where redis-server is not installed; CI runs them with one.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Raw, free_port};

/// A redis-server child, killed when dropped (also when the test panics).
pub struct RealRedis {
    child: Child,
    pub port: u16,
}

impl RealRedis {
    /// redis-server on a free port with `--save ''` and `extra` options, answering PING; `None`
    /// when redis-server is not installed. Panics if it never answers.
    pub fn start(extra: &[&str]) -> Option<RealRedis> {
        Self::launch(None, extra)
    }

    /// Like [`start`](Self::start), its working directory (`--dir`) `dir`: to persist there, or to
    /// load what is there (it answers PONG once the files are loaded).
    pub fn start_in(dir: &Path, extra: &[&str]) -> Option<RealRedis> {
        Self::launch(Some(dir), extra)
    }

    fn launch(dir: Option<&Path>, extra: &[&str]) -> Option<RealRedis> {
        // A port another test took between our probe and the bind: the child exits, try another.
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("redis-server");
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]).args(extra);
            if let Some(dir) = dir {
                cmd.arg("--dir").arg(dir);
            }
            let child = cmd.stdout(Stdio::null()).spawn().ok()?;
            let mut server = RealRedis { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut buf = [0u8; 64];
                    // -LOADING while it reads its files: asked again.
                    if s.write_all(b"PING\r\n").is_ok()
                        && s.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                    {
                        return Some(server);
                    }
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        panic!("redis-server did not answer");
    }

    /// A redis-rs connection.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap().get_connection().unwrap()
    }

    /// A raw RESP connection.
    pub fn raw(&self) -> Raw {
        Raw::new(std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap())
    }

    /// Wait for the process to exit by itself (after a SHUTDOWN).
    pub fn wait(&mut self) {
        let _ = self.child.wait();
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
