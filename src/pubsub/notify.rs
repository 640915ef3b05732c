//! Keyspace notifications (`notify-keyspace-events`): Redis's `notify.c`.
//!
//! Every write that Redis announces calls [`Events::notify`] with its class, event name and key,
//! through one of three doors, all ending here:
//!
//! * `WriteLock::notify` (src/db/mod.rs) from a handler holding the key's write lock (the usual
//!   way: the event is published while the key's stripe is held, so per key the events are in the
//!   order the writes took effect);
//! * `Ctx::notify` (src/cmd/mod.rs) where no lock is at hand;
//! * the shared paths themselves: lazy and active expiry (`expired`), and a key created by
//!   `WriteLock::insert` (`new`, only when the `n` class is on).
//!
//! With notifications off (the default) a call costs one relaxed atomic load.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use super::Hub;

/// The classes of `notify-keyspace-events` (Redis's `NOTIFY_*` bits).
pub mod class {
    /// `K`: publish on `__keyspace@<db>__:<key>`.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: publish on `__keyevent@<db>__:<event>`.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
    pub const GENERIC: u32 = 1 << 2;
    /// `$`: strings.
    pub const STRING: u32 = 1 << 3;
    /// `l`: lists.
    pub const LIST: u32 = 1 << 4;
    /// `s`: sets.
    pub const SET: u32 = 1 << 5;
    /// `h`: hashes.
    pub const HASH: u32 = 1 << 6;
    /// `z`: sorted sets.
    pub const ZSET: u32 = 1 << 7;
    /// `x`: a key expired.
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: a key was evicted for maxmemory.
    pub const EVICTED: u32 = 1 << 9;
    /// `t`: streams.
    pub const STREAM: u32 = 1 << 10;
    /// `m`: a read missed its key.
    pub const KEY_MISS: u32 = 1 << 11;
    /// `d`: module events.
    pub const MODULE: u32 = 1 << 13;
    /// `n`: a key was created.
    pub const NEW: u32 = 1 << 14;
    /// `A`: `g$lshzxetd`.
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// The class bits of a `notify-keyspace-events` value (already validated by the config layer).
pub fn flags_of(text: &str) -> u32 {
    text.chars()
        .map(|c| match c {
            'A' => class::ALL,
            'g' => class::GENERIC,
            '$' => class::STRING,
            'l' => class::LIST,
            's' => class::SET,
            'h' => class::HASH,
            'z' => class::ZSET,
            'x' => class::EXPIRED,
            'e' => class::EVICTED,
            't' => class::STREAM,
            'm' => class::KEY_MISS,
            'd' => class::MODULE,
            'n' => class::NEW,
            'K' => class::KEYSPACE,
            'E' => class::KEYEVENT,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// The configured classes and the hub events are published to.
#[derive(Default)]
pub struct Events {
    flags: AtomicU32,
    hub: OnceLock<Arc<Hub>>,
}

impl Events {
    /// Publish to `hub` from now on.
    pub fn attach(&self, hub: Arc<Hub>) {
        let _ = self.hub.set(hub);
    }

    /// Apply `notify-keyspace-events` (startup, CONFIG SET).
    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// Whether events of `class` are published at all (for callers that must work to find out
    /// whether an event happened, as `new`).
    #[inline]
    pub fn wants(&self, class: u32) -> bool {
        let f = self.flags.load(Ordering::Relaxed);
        f & class != 0 && f & (class::KEYSPACE | class::KEYEVENT) != 0
    }

    /// Announce `event` on `key` of database `db`, if `class` is enabled: Redis's
    /// `notifyKeyspaceEvent`. One relaxed load when it is not.
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8], db: usize) {
        let f = self.flags.load(Ordering::Relaxed);
        if f & class != 0 {
            self.publish(f, event, key, db);
        }
    }

    #[cold]
    fn publish(&self, flags: u32, event: &str, key: &[u8], db: usize) {
        let Some(hub) = self.hub.get() else { return };
        if hub.is_empty() {
            return;
        }
        if flags & class::KEYSPACE != 0 {
            let mut chan = format!("__keyspace@{db}__:").into_bytes();
            chan.extend_from_slice(key);
            hub.publish(&chan, event.as_bytes());
        }
        if flags & class::KEYEVENT != 0 {
            let chan = format!("__keyevent@{db}__:{event}");
            hub.publish(chan.as_bytes(), key);
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn class_letters_map_to_redis_bits() {
        assert_eq!(flags_of(""), 0);
        assert_eq!(flags_of("AKE"), class::ALL | class::KEYSPACE | class::KEYEVENT);
        assert_eq!(flags_of("Ex$"), class::KEYEVENT | class::EXPIRED | class::STRING);
        assert_eq!(flags_of("Knm"), class::KEYSPACE | class::NEW | class::KEY_MISS);
        assert_eq!(class::ALL & (class::NEW | class::KEY_MISS), 0, "A does not include n nor m");
    }

    /// The (channel, message) pairs of the pmessages waiting for `h`'s client.
    fn events(h: &crate::cmd::testing::Harness) -> Vec<(String, String)> {
        let mut out = bytes::BytesMut::new();
        h.client.subs.sub.drain_into(&mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        // *4 $8 pmessage $n pattern $n channel $n message
        lines.chunks(9).filter(|c| c.len() == 9).map(|c| (c[6].to_string(), c[8].to_string())).collect()
    }

    fn ev(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn writes_announce_their_events_in_redis_order_once_configured() {
        let mut listener = crate::cmd::testing::Harness::new();
        listener.run(&["psubscribe", "__key*__:*"]);
        let mut h = listener.other_client();
        h.run(&["set", "k", "v"]);
        assert!(events(&listener).is_empty(), "off by default");
        h.run(&["config", "set", "notify-keyspace-events", "KEA"]);
        h.run(&["set", "k", "v", "ex", "100"]);
        h.run(&["rpush", "l", "a"]);
        h.run(&["lpop", "l"]);
        h.run(&["select", "2"]);
        h.run(&["hset", "h", "f", "v"]);
        assert_eq!(
            events(&listener),
            ev(&[
                ("__keyspace@0__:k", "set"),
                ("__keyevent@0__:set", "k"),
                ("__keyspace@0__:k", "expire"),
                ("__keyevent@0__:expire", "k"),
                ("__keyspace@0__:l", "rpush"),
                ("__keyevent@0__:rpush", "l"),
                ("__keyspace@0__:l", "lpop"),
                ("__keyevent@0__:lpop", "l"),
                ("__keyspace@0__:l", "del"),
                ("__keyevent@0__:del", "l"),
                ("__keyspace@2__:h", "hset"),
                ("__keyevent@2__:hset", "h"),
            ])
        );
        h.run(&["config", "set", "notify-keyspace-events", "Ex"]);
        h.run(&["set", "e", "v", "px", "1"]);
        h.now_ms += 10;
        // Active expiry, then lazy expiry (INCR finds the key past its time).
        assert_eq!(h.shared.ks.expire_cycle(h.now_ms, 100), 1);
        h.run(&["select", "0"]);
        h.run(&["set", "x", "1", "px", "5"]);
        h.now_ms += 10;
        h.run(&["incr", "x"]);
        assert_eq!(events(&listener), ev(&[("__keyevent@2__:expired", "e"), ("__keyevent@0__:expired", "x")]));
    }

    #[test]
    fn bitmap_hll_geo_and_stream_writes_announce_as_redis() {
        let mut listener = crate::cmd::testing::Harness::new();
        listener.run(&["psubscribe", "__keyevent@*"]);
        let mut h = listener.other_client();
        h.run(&["config", "set", "notify-keyspace-events", "EA"]);
        h.run(&["setbit", "b", "1", "1"]);
        h.run(&["setbit", "b", "1", "1"]);
        h.run(&["bitop", "not", "b2", "b"]);
        h.run(&["bitop", "and", "b2", "nosuch"]);
        h.run(&["pfadd", "hl", "a"]);
        h.run(&["pfadd", "hl", "a"]);
        h.run(&["pfmerge", "hl2", "hl"]);
        h.run(&["geoadd", "g", "13.361389", "38.115556", "Palermo"]);
        h.run(&["geosearchstore", "gs", "g", "fromlonlat", "13", "38", "byradius", "100", "km"]);
        h.run(&["georadius", "g", "0", "0", "1", "km", "store", "gs"]);
        h.run(&["xadd", "x", "1-1", "f", "v"]);
        h.run(&["xadd", "x", "maxlen", "1", "2-1", "f", "v"]);
        h.run(&["xgroup", "create", "x", "g", "0"]);
        h.run(&["xreadgroup", "group", "g", "c", "streams", "x", ">"]);
        h.run(&["xgroup", "destroy", "x", "g"]);
        let names: Vec<String> = events(&listener).into_iter().map(|(chan, _)| chan).collect();
        let want = [
            "setbit",
            "set",
            "del",
            "pfadd",
            "pfadd",
            "zadd",
            "geosearchstore",
            "del",
            "xadd",
            "xadd",
            "xtrim",
            "xgroup-create",
            "xgroup-createconsumer",
            "xgroup-destroy",
        ];
        assert_eq!(names, want.iter().map(|e| format!("__keyevent@0__:{e}")).collect::<Vec<_>>());
    }
}
