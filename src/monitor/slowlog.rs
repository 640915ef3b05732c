//! The slow log: the last `slowlog-max-len` commands that ran at least `slowlog-log-slower-than`
//! microseconds, newest first, with their arguments trimmed as Redis trims them. Mirrors Redis's
//! `slowlog.c`. Only a command over the threshold takes the lock.

use std::collections::VecDeque;

use bytes::Bytes;

/// At most this many arguments are kept (the last one says how many more there were).
pub const MAX_ARGC: usize = 32;
/// Arguments longer than this are cut, with a note of how many bytes more there were.
pub const MAX_STRING: usize = 128;

/// One logged command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// Unix time (s) when it was logged.
    pub time: u64,
    pub duration_us: u64,
    pub argv: Vec<Bytes>,
    /// The client's `ip:port` and name (empty when unnamed).
    pub peer: String,
    pub name: Bytes,
}

/// The log itself.
#[derive(Default)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
    next_id: u64,
}

/// `argv` as Redis stores it in an entry: at most [`MAX_ARGC`] arguments, the last of them
/// `... (N more arguments)` when there were more; each string cut at [`MAX_STRING`] bytes with
/// `... (N more bytes)` appended.
pub fn trim_argv(argv: &[Bytes]) -> Vec<Bytes> {
    let kept = argv.len().min(MAX_ARGC);
    let mut out = Vec::with_capacity(kept);
    for (j, a) in argv.iter().take(kept).enumerate() {
        if j == kept - 1 && kept != argv.len() {
            let more = argv.len() - kept + 1;
            out.push(Bytes::from(format!("... ({more} more arguments)")));
        } else if a.len() > MAX_STRING {
            let mut s = a[..MAX_STRING].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes());
            out.push(Bytes::from(s));
        } else {
            out.push(a.clone());
        }
    }
    out
}

impl SlowLog {
    /// Log a command (already found slow enough), keeping at most `max_len` entries.
    pub fn push(&mut self, mut entry: Entry, max_len: usize) {
        entry.id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(entry);
        self.entries.truncate(max_len);
    }

    /// The newest `count` entries (every one when None).
    pub fn newest(&self, count: Option<usize>) -> Vec<Entry> {
        self.entries.iter().take(count.unwrap_or(usize::MAX)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// SLOWLOG RESET: drop the entries (ids keep counting, as in Redis).
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// Shorten the log to `max_len` (after CONFIG SET slowlog-max-len).
    pub fn truncate(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn long_arguments_are_cut_at_128_bytes_with_the_rest_counted() {
        let long = "x".repeat(200);
        let out = trim_argv(&[b("set"), b(&long), b("v")]);
        assert_eq!(out[1], Bytes::from(format!("{}... (72 more bytes)", "x".repeat(128))));
        assert_eq!(out[0], b("set"));
        assert_eq!(out[2], b("v"));
        assert_eq!(trim_argv(&[b(&"y".repeat(128))])[0].len(), 128, "exactly 128 bytes is kept whole");
    }

    #[test]
    fn more_than_32_arguments_keep_31_and_count_the_rest() {
        let argv: Vec<Bytes> = (0..40).map(|i| b(&i.to_string())).collect();
        let out = trim_argv(&argv);
        assert_eq!(out.len(), 32);
        assert_eq!(out[30], b("30"));
        assert_eq!(out[31], b("... (9 more arguments)"));
        let exactly: Vec<Bytes> = (0..32).map(|i| b(&i.to_string())).collect();
        assert_eq!(trim_argv(&exactly), exactly);
    }

    #[test]
    fn newest_first_bounded_and_ids_survive_reset() {
        let mut log = SlowLog::default();
        let entry = |d| Entry { id: 0, time: 1, duration_us: d, argv: vec![], peer: String::new(), name: Bytes::new() };
        for d in 0..5 {
            log.push(entry(d), 3);
        }
        let got: Vec<(u64, u64)> = log.newest(None).iter().map(|e| (e.id, e.duration_us)).collect();
        assert_eq!(got, vec![(4, 4), (3, 3), (2, 2)]);
        assert_eq!(log.newest(Some(1)).len(), 1);
        log.reset();
        assert!(log.is_empty());
        log.push(entry(9), 3);
        assert_eq!(log.newest(None)[0].id, 5);
    }
}
