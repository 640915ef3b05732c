//! Writing the stream to an idle replica's socket from the thread that appends it to the backlog.
//!
//! A replica's sender task (`primary::run`) writes the backlog to its socket from the offset the
//! replica was sent up to. When it has written everything and the stream ends there, it goes idle
//! ([`Outlet::idle`]): it leaves its socket and that offset in its outlet and waits. Whoever then
//! appends a chunk to the backlog (the feed thread, WAIT, a replica proxying its primary) offers
//! the chunk to every outlet ([`Outlet::offer`]): an idle one whose offset is the chunk's start
//! gets it written to its socket there and then, with one non-blocking send, and stays idle: no
//! task is woken (Redis writes its replicas' output from its own event loop the same way). When
//! the socket takes only part of it (or would block, or fails), or the offsets do not meet, the
//! outlet stops being idle and its sender is woken to go on from the backlog itself.
//!
//! The protocol, under the outlet's lock:
//! - the sender goes idle only if the stream's end, read under the lock, is its offset; an
//!   appender publishes the new end before it takes the lock to offer. So either the sender's
//!   check follows the append's publication (it sees the new end and reads the backlog again), or
//!   the offer follows the check (it finds the sender idle and writes, or wakes it): no chunk is
//!   left unsent while the sender sleeps.
//! - only an idle outlet is written by an appender, only a non-idle one by its sender, and the
//!   sender stops being idle (under the lock) before it writes, takes its offset back, or lets its
//!   socket close; an appender sends while holding the lock. So the bytes go out once each, in
//!   the stream's order, and never to a closed (or reused) descriptor.

use std::os::fd::RawFd;

use crate::state::Counter;
use crate::sync::{Arc, Mutex, lock};

/// One replica's sending state, shared between its sender task and the appenders.
pub struct Outlet {
    /// The replica's client id (its reader entry in the backlog).
    pub id: u64,
    state: Mutex<State>,
    /// Wakes the sender after an offer that left it bytes to send (or a reset of the backlog).
    pub wake: tokio::sync::Notify,
    /// INFO `total_net_output_bytes`.
    output: std::sync::Arc<Counter>,
}

struct State {
    /// The socket, while the sender is idle.
    fd: Option<RawFd>,
    /// The stream offset the replica was sent up to (kept here while idle).
    sent: u64,
}

/// What became of an offered chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// The sender is not idle: it reads the backlog again before it next waits.
    Busy,
    /// Written whole to the idle sender's socket; the replica was now sent up to this offset.
    Written(u64),
    /// The sender was woken to send (the rest of) it from the backlog.
    Woken,
}

impl Outlet {
    pub fn new(id: u64, output: std::sync::Arc<Counter>) -> Arc<Outlet> {
        Arc::new(Outlet {
            id,
            state: Mutex::new(State { fd: None, sent: 0 }),
            wake: tokio::sync::Notify::new(),
            output,
        })
    }

    /// The sender, having written every byte up to `sent` to its socket `fd`, goes idle unless
    /// `end()` (the stream's end, read under the lock) is past `sent`: then None, read the backlog
    /// again. Until the returned guard is dropped (or [`Idle::resume`]d), appenders may write to
    /// `fd`; the sender waits on [`Outlet::wake`] meanwhile and must drop the guard before it
    /// writes or closes `fd`.
    pub fn idle(&self, fd: RawFd, sent: u64, end: impl FnOnce() -> u64) -> Option<Idle<'_>> {
        let mut st = lock(&self.state);
        // The broken variant (a model's) checks nothing: a chunk appended since the sender's last
        // read of the backlog is then never sent.
        if !crate::sync::fault::on(crate::sync::fault::Fault::OutletIdleWithoutRecheck) && end() != sent {
            return None;
        }
        st.fd = Some(fd);
        st.sent = sent;
        Some(Idle(self))
    }

    /// Offer the chunk of the stream that starts at offset `start` (just appended to the backlog).
    pub fn offer(&self, start: u64, bytes: &[u8]) -> Offer {
        let mut st = lock(&self.state);
        let Some(fd) = st.fd else { return Offer::Busy };
        if st.sent != start {
            // Bytes before this chunk were not sent (chunks offered out of order by two
            // appenders): the sender takes everything from the backlog.
            st.fd = None;
            drop(st);
            self.wake.notify_one();
            return Offer::Woken;
        }
        let mut done = 0;
        while done < bytes.len() {
            match send_now(fd, &bytes[done..]) {
                Ok(n) if n > 0 => done += n,
                _ => break,
            }
        }
        st.sent += done as u64;
        self.output.add(done as u64);
        if done == bytes.len() {
            return Offer::Written(st.sent);
        }
        st.fd = None;
        drop(st);
        self.wake.notify_one();
        Offer::Woken
    }

    /// The backlog started over (a reset): an idle sender is woken to find where it stands.
    pub fn hand_back(&self) {
        let mut st = lock(&self.state);
        if st.fd.take().is_some() {
            drop(st);
            self.wake.notify_one();
        }
    }
}

/// While alive, the sender is idle (see [`Outlet::idle`]).
pub struct Idle<'a>(&'a Outlet);

impl Idle<'_> {
    /// Stop being idle: the offset the replica was sent up to meanwhile.
    pub fn resume(self) -> u64 {
        let mut st = lock(&self.0.state);
        st.fd = None;
        st.sent
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).fd = None;
    }
}

/// One non-blocking send of `buf` on socket `fd` (never raises SIGPIPE).
fn send_now(fd: RawFd, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call, and the kernel only
    // reads it. `fd` is the replica's socket, still open: `Outlet::offer` calls this only while the
    // outlet holds it, under the outlet's lock, and the sender takes it out under that lock (its
    // `Idle` guard's `resume` or drop) before it writes to or closes the socket (tested by
    // `outlet::tests` and the loom model `replica_direct_writes_...`).
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    /// Everything the peer can read now.
    fn read_now(peer: &mut UnixStream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1 << 16];
        while let Ok(n) = peer.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    fn pair() -> (UnixStream, UnixStream) {
        let (peer, conn) = UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        conn.set_nonblocking(true).unwrap();
        (peer, conn)
    }

    #[test]
    fn an_idle_sender_is_written_in_place_and_a_busy_one_left_alone() {
        let counter = std::sync::Arc::new(Counter::default());
        let o = Outlet::new(7, counter.clone());
        let (mut peer, conn) = pair();
        // Not idle: nothing written, nobody woken.
        assert_eq!(o.offer(0, b"abc"), Offer::Busy);
        assert!(read_now(&mut peer).is_empty());
        // The stream moved past what it was sent: it must read the backlog again.
        assert!(o.idle(conn.as_raw_fd(), 0, || 3).is_none());
        let idle = o.idle(conn.as_raw_fd(), 3, || 3).expect("caught up");
        assert_eq!(o.offer(3, b"defg"), Offer::Written(7));
        assert_eq!(o.offer(7, b"hi"), Offer::Written(9));
        assert_eq!(read_now(&mut peer), b"defghi", "written in order, once");
        assert_eq!(counter.get(), 6);
        // Still idle: no wake-up was left for the sender.
        let woken = futures_now(&o);
        assert!(!woken, "a whole write wakes nobody");
        assert_eq!(idle.resume(), 9, "the sender goes on from what was written for it");
        // Taken back: offers leave it alone again.
        assert_eq!(o.offer(9, b"jk"), Offer::Busy);
        assert!(read_now(&mut peer).is_empty());
    }

    /// Whether a wake-up is pending on the outlet (consumes it).
    fn futures_now(o: &Outlet) -> bool {
        let n = o.wake.notified();
        let mut n = std::pin::pin!(n);
        let waker = std::task::Waker::noop();
        n.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_ready()
    }

    use std::future::Future;

    #[test]
    fn a_chunk_out_of_order_or_too_big_for_the_socket_wakes_the_sender() {
        let o = Outlet::new(1, std::sync::Arc::new(Counter::default()));
        let (mut peer, conn) = pair();
        // Out of order: bytes 10..20 were not sent yet; nothing written, the sender woken.
        let idle = o.idle(conn.as_raw_fd(), 10, || 10).unwrap();
        assert_eq!(o.offer(20, b"late"), Offer::Woken);
        assert!(read_now(&mut peer).is_empty());
        assert!(futures_now(&o));
        assert_eq!(idle.resume(), 10);
        // More than the socket takes: what it took counts, the rest is the sender's.
        let idle = o.idle(conn.as_raw_fd(), 10, || 10).unwrap();
        let big = vec![b'x'; 8 << 20];
        assert_eq!(o.offer(10, &big), Offer::Woken);
        assert!(futures_now(&o));
        let sent = idle.resume();
        let got = read_now(&mut peer);
        assert!(sent > 10 && sent < 10 + big.len() as u64, "{sent}");
        assert_eq!(got.len() as u64, sent - 10, "the offset is what the socket took");
        // A reset wakes an idle sender; a dropped guard takes the socket back.
        let idle = o.idle(conn.as_raw_fd(), 5, || 5).unwrap();
        o.hand_back();
        assert!(futures_now(&o));
        drop(idle);
        let idle = o.idle(conn.as_raw_fd(), 5, || 5).unwrap();
        drop(idle);
        assert_eq!(o.offer(5, b"zz"), Offer::Busy);
    }
}
