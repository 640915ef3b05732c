//! A list's nodes: the one node of a small list held inline, a deque once there are more. A list
//! of a few elements (most lists) is then its cell and one node buffer, not also a deque's
//! allocation (Redis's is a quicklist header, a node and its listpack). The deque API the list
//! uses, over either form.

use std::collections::VecDeque;
use std::ops::{Index, IndexMut};

/// Nodes in order.
#[derive(Clone, Debug)]
pub(super) enum Nodes<N> {
    /// No node or one (a list that never held more than one node).
    One(Option<N>),
    /// Any number (once a second node was added; never moves back).
    Many(VecDeque<N>),
}

impl<N> Default for Nodes<N> {
    fn default() -> Self {
        Nodes::One(None)
    }
}

/// Walks the nodes from either end.
pub(super) enum NodesIter<'a, N> {
    One(std::slice::Iter<'a, N>),
    Many(std::collections::vec_deque::Iter<'a, N>),
}

impl<'a, N> Iterator for NodesIter<'a, N> {
    type Item = &'a N;
    fn next(&mut self) -> Option<&'a N> {
        match self {
            NodesIter::One(it) => it.next(),
            NodesIter::Many(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            NodesIter::One(it) => it.size_hint(),
            NodesIter::Many(it) => it.size_hint(),
        }
    }
}

impl<N> DoubleEndedIterator for NodesIter<'_, N> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            NodesIter::One(it) => it.next_back(),
            NodesIter::Many(it) => it.next_back(),
        }
    }
}

impl<N> ExactSizeIterator for NodesIter<'_, N> {}

impl<N> Nodes<N> {
    pub fn len(&self) -> usize {
        match self {
            Nodes::One(n) => usize::from(n.is_some()),
            Nodes::Many(d) => d.len(),
        }
    }

    /// Nodes the deque has room for (0 inline).
    pub fn capacity(&self) -> usize {
        match self {
            Nodes::One(_) => 0,
            Nodes::Many(d) => d.capacity(),
        }
    }

    pub fn iter(&self) -> NodesIter<'_, N> {
        match self {
            Nodes::One(n) => NodesIter::One(n.as_slice().iter()),
            Nodes::Many(d) => NodesIter::Many(d.iter()),
        }
    }

    pub fn front(&self) -> Option<&N> {
        match self {
            Nodes::One(n) => n.as_ref(),
            Nodes::Many(d) => d.front(),
        }
    }

    pub fn back(&self) -> Option<&N> {
        match self {
            Nodes::One(n) => n.as_ref(),
            Nodes::Many(d) => d.back(),
        }
    }

    pub fn front_mut(&mut self) -> Option<&mut N> {
        match self {
            Nodes::One(n) => n.as_mut(),
            Nodes::Many(d) => d.front_mut(),
        }
    }

    pub fn back_mut(&mut self) -> Option<&mut N> {
        match self {
            Nodes::One(n) => n.as_mut(),
            Nodes::Many(d) => d.back_mut(),
        }
    }

    /// The deque, moving an inline node into it first.
    fn many(&mut self) -> &mut VecDeque<N> {
        if let Nodes::One(n) = self {
            let mut d = VecDeque::with_capacity(2);
            d.extend(n.take());
            *self = Nodes::Many(d);
        }
        match self {
            Nodes::Many(d) => d,
            Nodes::One(_) => unreachable!("moved to the deque above"),
        }
    }

    pub fn push_back(&mut self, node: N) {
        match self {
            Nodes::One(n @ None) => *n = Some(node),
            _ => self.many().push_back(node),
        }
    }

    pub fn push_front(&mut self, node: N) {
        match self {
            Nodes::One(n @ None) => *n = Some(node),
            _ => self.many().push_front(node),
        }
    }

    pub fn pop_front(&mut self) -> Option<N> {
        match self {
            Nodes::One(n) => n.take(),
            Nodes::Many(d) => d.pop_front(),
        }
    }

    pub fn pop_back(&mut self) -> Option<N> {
        match self {
            Nodes::One(n) => n.take(),
            Nodes::Many(d) => d.pop_back(),
        }
    }

    /// Insert at `i` (`i <= len`).
    pub fn insert(&mut self, i: usize, node: N) {
        match self {
            Nodes::One(n @ None) => *n = Some(node),
            _ => self.many().insert(i, node),
        }
    }

    pub fn clear(&mut self) {
        *self = Nodes::One(None);
    }

    /// Drop the deque's spare room.
    pub fn shrink_to_fit(&mut self) {
        if let Nodes::Many(d) = self {
            d.shrink_to_fit();
        }
    }
}

impl<N> Index<usize> for Nodes<N> {
    type Output = N;
    fn index(&self, i: usize) -> &N {
        match self {
            Nodes::One(Some(n)) if i == 0 => n,
            Nodes::One(_) => panic!("node {i} of {}", self.len()),
            Nodes::Many(d) => &d[i],
        }
    }
}

impl<N> IndexMut<usize> for Nodes<N> {
    fn index_mut(&mut self, i: usize) -> &mut N {
        match self {
            Nodes::One(Some(n)) if i == 0 => n,
            Nodes::One(_) => panic!("node {i} out of range"),
            Nodes::Many(d) => &mut d[i],
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn one_node_inline_then_a_deque_in_order() {
        let mut n: Nodes<u32> = Nodes::default();
        assert_eq!((n.len(), n.front(), n.back()), (0, None, None));
        n.push_back(2);
        assert!(matches!(n, Nodes::One(Some(2))) && n.capacity() == 0);
        n[0] += 1;
        assert_eq!(n.pop_front(), Some(3));
        n.push_front(5);
        n.push_front(4);
        n.push_back(7);
        n.insert(2, 6);
        assert!(matches!(n, Nodes::Many(_)));
        assert_eq!(n.iter().copied().collect::<Vec<_>>(), [4, 5, 6, 7]);
        assert_eq!(n.iter().rev().copied().collect::<Vec<_>>(), [7, 6, 5, 4]);
        assert_eq!(n.iter().len(), 4);
        *n.front_mut().unwrap() += 10;
        *n.back_mut().unwrap() += 10;
        assert_eq!((n.front(), n.back(), n[1]), (Some(&14), Some(&17), 5));
        assert_eq!((n.pop_back(), n.pop_front(), n.len()), (Some(17), Some(14), 2));
        n.clear();
        assert!(matches!(n, Nodes::One(None)));
    }
}
