//! A harness for unit-testing handlers without a socket: a fresh server state and one client.

use std::sync::Arc;

use bytes::Bytes;

use super::{Client, Ctx, execute};
use crate::config::Config;
use crate::resp::Frame;
use crate::state::Shared;

pub struct Harness {
    pub shared: Arc<Shared>,
    pub client: Client,
    /// The clock commands see; tests move it to exercise expiry.
    pub now_ms: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let shared = Shared::new(Config::default());
        shared.ks.set_aof(crate::aof::Aof::disabled());
        let info = shared.clients.register("127.0.0.1:1".into(), "127.0.0.1:6379".into());
        Harness { shared, client: Client::new(info), now_ms: 1_700_000_000_000 }
    }

    /// Another client of the same server, at the same time.
    pub fn other_client(&self) -> Harness {
        let info = self.shared.clients.register("127.0.0.1:2".into(), "127.0.0.1:6379".into());
        Harness { shared: self.shared.clone(), client: Client::new(info), now_ms: self.now_ms }
    }

    /// Run one command given as strings.
    pub fn run(&mut self, args: &[&str]) -> Frame {
        let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let mut ctx = Ctx::new(&self.shared, &mut self.client, self.now_ms);
        // Replies encoded in advance compare as the frames they stand for.
        execute(&mut ctx, &argv).expand()
    }
}

/// Shorthands for expected frames.
pub fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

pub fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

pub fn err(s: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(s.as_bytes()))
}

pub fn arr(items: Vec<Frame>) -> Frame {
    Frame::Array(items)
}

pub fn ok() -> Frame {
    Frame::ok()
}
