//! Waking the writer thread: `thread::park`/`unpark` normally (an unpark before the park leaves a
//! token, so it is never lost). Under loom a `Mutex<bool>` + `Condvar` token stands in, because loom's
//! `unpark` also wakes a thread blocked on a loom `Mutex`, which its scheduler cannot handle.

use std::time::Duration;

#[cfg(feature = "loom")]
use crate::sync::{Arc, Condvar, Mutex, lock};

/// The writer's side: waits for a token.
pub(super) struct Parker {
    #[cfg(feature = "loom")]
    token: Arc<(Mutex<bool>, Condvar)>,
}

/// The producers' side: leaves a token and wakes the writer. Cheap to clone.
#[derive(Clone)]
pub(super) struct Unparker {
    #[cfg(not(feature = "loom"))]
    thread: crate::sync::thread::Thread,
    #[cfg(feature = "loom")]
    token: Arc<(Mutex<bool>, Condvar)>,
}

impl Parker {
    pub(super) fn new() -> Self {
        Parker {
            #[cfg(feature = "loom")]
            token: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }

    /// What the unparker needs from this parker, taken before the parker moves to the writer thread.
    pub(super) fn link(&self) -> Link {
        Link {
            #[cfg(feature = "loom")]
            token: Arc::clone(&self.token),
        }
    }

    /// Blocks until a token is available, then consumes it (may also return spuriously).
    pub(super) fn park(&self) {
        #[cfg(not(feature = "loom"))]
        std::thread::park();
        #[cfg(feature = "loom")]
        {
            let (flag, cv) = &*self.token;
            let mut token = lock(flag);
            while !*token {
                token = cv.wait(token).unwrap_or_else(|e| e.into_inner());
            }
            *token = false;
        }
    }

    /// Loom models only (`Fault::WriterParkWithoutRecheck`): a bare wait that forgets an unpark
    /// left before it, unless `shutting_down()` (checked under the token lock, so that the broken
    /// variant still lets the model shut the writer down and finish).
    #[cfg(feature = "loom")]
    pub(super) fn park_losing_wakeup(&self, shutting_down: impl Fn() -> bool) {
        let (flag, cv) = &*self.token;
        let mut token = lock(flag);
        if !shutting_down() {
            *token = false;
        }
        while !*token {
            token = cv.wait(token).unwrap_or_else(|e| e.into_inner());
        }
        *token = false;
    }

    /// Like `park`, but gives up after `timeout` (under loom, which has no time: at once).
    pub(super) fn park_timeout(&self, timeout: Duration) {
        #[cfg(not(feature = "loom"))]
        std::thread::park_timeout(timeout);
        #[cfg(feature = "loom")]
        {
            let _ = timeout;
            *lock(&self.token.0) = false;
            crate::sync::thread::yield_now();
        }
    }
}

/// See [`Parker::link`].
pub(super) struct Link {
    #[cfg(feature = "loom")]
    token: Arc<(Mutex<bool>, Condvar)>,
}

impl Link {
    /// The unparker of the parker this link came from, whose `park` calls run on `writer`.
    pub(super) fn unparker(self, writer: &crate::sync::thread::Thread) -> Unparker {
        #[cfg(not(feature = "loom"))]
        return Unparker { thread: writer.clone() };
        #[cfg(feature = "loom")]
        {
            let _ = writer;
            Unparker { token: self.token }
        }
    }
}

impl Unparker {
    pub(super) fn unpark(&self) {
        #[cfg(not(feature = "loom"))]
        self.thread.unpark();
        #[cfg(feature = "loom")]
        {
            *lock(&self.token.0) = true;
            self.token.1.notify_one();
        }
    }
}
