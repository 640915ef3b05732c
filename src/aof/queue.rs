//! The multi-producer queue between connection threads and the writer: crossbeam's lock-free FIFO
//! `SegQueue` normally, a `Mutex<VecDeque>` under loom (which cannot see crossbeam's atomics).

#[cfg(not(feature = "loom"))]
pub(super) struct Queue<T>(crossbeam::queue::SegQueue<T>);

#[cfg(not(feature = "loom"))]
impl<T> Queue<T> {
    pub(super) fn new() -> Self {
        Queue(crossbeam::queue::SegQueue::new())
    }
    pub(super) fn push(&self, item: T) {
        self.0.push(item)
    }
    pub(super) fn pop(&self) -> Option<T> {
        self.0.pop()
    }
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(feature = "loom")]
pub(super) struct Queue<T>(crate::sync::Mutex<std::collections::VecDeque<T>>);

#[cfg(feature = "loom")]
impl<T> Queue<T> {
    pub(super) fn new() -> Self {
        Queue(crate::sync::Mutex::new(std::collections::VecDeque::new()))
    }
    pub(super) fn push(&self, item: T) {
        crate::sync::lock(&self.0).push_back(item)
    }
    pub(super) fn pop(&self) -> Option<T> {
        crate::sync::lock(&self.0).pop_front()
    }
    pub(super) fn is_empty(&self) -> bool {
        crate::sync::lock(&self.0).is_empty()
    }
}
