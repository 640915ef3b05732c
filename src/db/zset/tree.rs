//! The large sorted set (Redis's `skiplist` encoding: `zskiplist` + `dict` in `t_zset.c`): an
//! order-statistics B+tree over (score, member) plus a hash index from member to entry.
//!
//! Why a B+tree rather than a skiplist with spans (or the treap this replaced): all give O(log n)
//! insert, delete, rank and select, but an update of one hot 100k-member set is bound by cache
//! misses, one per node visited. A skiplist or treap visits ~20-25 nodes, each a separate line,
//! and writes a span or size on most of them; here a node holds up to [`CAP`] keys, so a descent
//! is 3-4 nodes, the binary search inside one touches a few lines, and only one size per level is
//! written. Scores sit inline in the nodes, so the member bytes are read only on a score tie.
//!
//! Layout: every entry (score and member bytes) lives in a slot of `slots`, addressed by a `u32`
//! id that never changes while the entry lives (so the index can point at it); the tree's leaves
//! hold (score, id) pairs in order, its inner nodes per child the child's id, its entry count and
//! its last (largest) key. Leaves and inner nodes sit in two `Vec`s addressed by `u32`, freed ones
//! reused through free lists. The index is a `hashbrown::HashTable` of slot ids hashed by the
//! member bytes stored in the slot, so each member is stored exactly once. No `unsafe`.
//!
//! Invariants: keys are ordered by [`cmp_entry`] (ties of equal members cannot happen: members are
//! unique); an inner node's `size[i]` is the entry count under `child[i]`, `(max_score[i],
//! max_id[i])` its last key; every node but the root is non-empty, all leaves are at depth
//! `height`; `len` is the entry count; the index holds exactly the live slot ids.

use std::cmp::Ordering;

use hashbrown::HashTable;

use super::range::cmp_entry;

/// No node / slot.
const NIL: u32 = u32::MAX;
/// Keys per leaf, children per inner node.
const CAP: usize = 32;
/// Below this a node is merged with (or refilled from) a neighbour.
const MIN: usize = CAP / 4;

/// A member's bytes: up to 22 inline (in the 32 bytes the handle takes anyway), so comparing two
/// members on a score tie reads their slots and nothing else; longer ones on the heap.
pub type MemberBytes = smallvec::SmallVec<[u8; 22]>;

/// One entry's storage.
#[derive(Debug, Clone)]
struct Slot {
    score: f64,
    member: MemberBytes,
}

/// `repr(C)`, the length first: it shares the first cache line with the lowest keys, which a
/// binary search often reads anyway (Rust's layout put it after the arrays, a line of its own).
#[derive(Debug, Clone)]
#[repr(C)]
struct Leaf {
    len: usize,
    score: [f64; CAP],
    id: [u32; CAP],
}

impl Leaf {
    fn new() -> Leaf {
        Leaf { len: 0, score: [0.0; CAP], id: [NIL; CAP] }
    }
}

#[derive(Debug, Clone)]
#[repr(C)]
struct Inner {
    len: usize,
    max_score: [f64; CAP],
    max_id: [u32; CAP],
    size: [u32; CAP],
    child: [u32; CAP],
}

impl Inner {
    fn new() -> Inner {
        Inner { len: 0, child: [NIL; CAP], size: [0; CAP], max_score: [0.0; CAP], max_id: [NIL; CAP] }
    }

    fn set(&mut self, i: usize, (child, size, score, id): (u32, u32, f64, u32)) {
        (self.child[i], self.size[i], self.max_score[i], self.max_id[i]) = (child, size, score, id);
    }
}

/// A member handed to a [`Tree::count_before`] predicate: its bytes are read only when asked for.
pub struct Member<'a> {
    tree: &'a Tree,
    id: u32,
}

impl<'a> Member<'a> {
    /// The member's bytes.
    pub fn get(&self) -> &'a [u8] {
        self.tree.member(self.id)
    }
}

/// A live member's slot, as [`Tree::slot`] found it: valid until the tree next changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotId(u32);

/// The B+tree and its member index.
#[derive(Debug, Clone)]
pub struct Tree {
    slots: Vec<Slot>,
    /// Freed slot ids, reused first (their slots hold an empty member).
    free: Vec<u32>,
    leaves: Vec<Leaf>,
    free_leaves: Vec<u32>,
    inners: Vec<Inner>,
    free_inners: Vec<u32>,
    root: u32,
    /// 0: the root is a leaf.
    height: u32,
    len: usize,
    index: HashTable<u32>,
    hasher: crate::db::compact::TableHasher,
    member_bytes: usize,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            slots: Vec::new(),
            free: Vec::new(),
            leaves: vec![Leaf::new()],
            free_leaves: Vec::new(),
            inners: Vec::new(),
            free_inners: Vec::new(),
            root: 0,
            height: 0,
            len: 0,
            index: HashTable::new(),
            hasher: crate::db::compact::TableHasher::new(),
            member_bytes: 0,
        }
    }
}

impl Tree {
    /// An empty tree with room for `n` members.
    pub fn with_capacity(n: usize) -> Tree {
        let mut t = Tree::default();
        t.slots.reserve_exact(n);
        t.index.reserve(n, |_| 0);
        t
    }

    /// Members held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held (slots, nodes, index, members too long to be inline with allocator rounding
    /// estimated at 16 each).
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + (self.free.capacity() + self.free_leaves.capacity() + self.free_inners.capacity()) * 4
            + self.leaves.capacity() * size_of::<Leaf>()
            + self.inners.capacity() * size_of::<Inner>()
            + self.index.capacity() * (size_of::<u32>() + 1)
            + self.member_bytes
    }

    fn member(&self, id: u32) -> &[u8] {
        &self.slots[id as usize].member
    }

    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn id_of(&self, member: &[u8]) -> Option<u32> {
        let slots = &self.slots;
        self.index.find(self.hash(member), |&id| *slots[id as usize].member == *member).copied()
    }

    /// The order of keys (score, slot id): the score first, the member bytes only on a tie.
    #[inline]
    /// The scores first: a search reads a node's score array and touches its id array (another
    /// cache line) and the slots only on a tie.
    fn cmp_key(&self, a_score: f64, a: u32, b_score: f64, b: u32) -> Ordering {
        match a_score.partial_cmp(&b_score) {
            Some(Ordering::Equal) | None if a == b => Ordering::Equal,
            Some(Ordering::Equal) | None => cmp_entry(a_score, self.member(a), b_score, self.member(b)),
            Some(o) => o,
        }
    }

    /// The member's score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.id_of(member).map(|id| self.slots[id as usize].score)
    }

    /// The member's ascending rank and score.
    pub fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        let id = self.id_of(member)?;
        let score = self.slots[id as usize].score;
        Some((self.count_before(|s, m| self.cmp_key(s, m.id, score, id) == Ordering::Less), score))
    }

    /// The number of leading entries (in order) for which `before` holds, found by descent:
    /// exact when `before` holds on a prefix of the order (scores, or lex bounds over equal scores).
    pub fn count_before(&self, before: impl Fn(f64, &Member) -> bool) -> usize {
        let member = |id| Member { tree: self, id };
        let (mut node, mut h, mut acc) = (self.root, self.height, 0usize);
        loop {
            if h == 0 {
                let l = &self.leaves[node as usize];
                return acc + partition(l.len, |i| before(l.score[i], &member(l.id[i])));
            }
            let n = &self.inners[node as usize];
            let i = partition(n.len, |i| before(n.max_score[i], &member(n.max_id[i])));
            acc += n.size[..i].iter().map(|&s| s as usize).sum::<usize>();
            if i == n.len {
                return acc;
            }
            (node, h) = (n.child[i], h - 1);
        }
    }

    /// The entry at ascending `rank`.
    pub fn at(&self, mut rank: usize) -> Option<(&[u8], f64)> {
        if rank >= self.len {
            return None;
        }
        let (mut node, mut h) = (self.root, self.height);
        while h > 0 {
            let n = &self.inners[node as usize];
            let mut i = 0;
            while rank >= n.size[i] as usize {
                rank -= n.size[i] as usize;
                i += 1;
            }
            (node, h) = (n.child[i], h - 1);
        }
        let l = &self.leaves[node as usize];
        Some((self.member(l.id[rank]), l.score[rank]))
    }

    /// Visit entries from ascending rank `start`, upward (or downward when `rev`), while `f`
    /// returns true.
    pub fn walk<'s>(&'s self, start: usize, rev: bool, mut f: impl FnMut(&'s [u8], f64) -> bool) {
        if start >= self.len {
            return;
        }
        // The inner nodes above the current leaf, with the child index taken in each.
        let mut path: Vec<(u32, usize)> = Vec::with_capacity(self.height as usize);
        let (mut node, mut k) = (self.root, start);
        for _ in 0..self.height {
            let n = &self.inners[node as usize];
            let mut i = 0;
            while k >= n.size[i] as usize {
                k -= n.size[i] as usize;
                i += 1;
            }
            path.push((node, i));
            node = n.child[i];
        }
        let mut pos = k;
        loop {
            let l = &self.leaves[node as usize];
            if rev {
                for p in (0..=pos).rev() {
                    if !f(self.member(l.id[p]), l.score[p]) {
                        return;
                    }
                }
            } else {
                for p in pos..l.len {
                    if !f(self.member(l.id[p]), l.score[p]) {
                        return;
                    }
                }
            }
            // The next leaf: up to the first ancestor with a child further on, then down its edge.
            loop {
                let Some((up, i)) = path.pop() else { return };
                let n = &self.inners[up as usize];
                let next = if rev { i.checked_sub(1) } else { Some(i + 1).filter(|&j| j < n.len) };
                if let Some(j) = next {
                    path.push((up, j));
                    node = n.child[j];
                    break;
                }
            }
            while path.len() < self.height as usize {
                let n = &self.inners[node as usize];
                let j = if rev { n.len - 1 } else { 0 };
                path.push((node, j));
                node = n.child[j];
            }
            pos = if rev { self.leaves[node as usize].len - 1 } else { 0 };
        }
    }

    // ---- nodes ----------------------------------------------------------------------------

    fn new_leaf(&mut self) -> u32 {
        match self.free_leaves.pop() {
            Some(id) => {
                self.leaves[id as usize].len = 0;
                id
            }
            None => {
                self.leaves.push(Leaf::new());
                (self.leaves.len() - 1) as u32
            }
        }
    }

    fn new_inner(&mut self) -> u32 {
        match self.free_inners.pop() {
            Some(id) => {
                self.inners[id as usize].len = 0;
                id
            }
            None => {
                self.inners.push(Inner::new());
                (self.inners.len() - 1) as u32
            }
        }
    }

    fn free_node(&mut self, node: u32, h: u32) {
        if h == 0 { self.free_leaves.push(node) } else { self.free_inners.push(node) }
    }

    /// Keys (leaf) or children (inner) of a node.
    fn node_len(&self, node: u32, h: u32) -> usize {
        if h == 0 { self.leaves[node as usize].len } else { self.inners[node as usize].len }
    }

    /// A non-empty node as its parent records it: (node, entries under it, its last key).
    fn summary(&self, node: u32, h: u32) -> (u32, u32, f64, u32) {
        if h == 0 {
            let l = &self.leaves[node as usize];
            (node, l.len as u32, l.score[l.len - 1], l.id[l.len - 1])
        } else {
            let n = &self.inners[node as usize];
            let size = n.size[..n.len].iter().sum();
            (node, size, n.max_score[n.len - 1], n.max_id[n.len - 1])
        }
    }

    /// Keys of the leaf ordered before (score, id).
    fn leaf_rank(&self, leaf: u32, score: f64, id: u32) -> usize {
        let l = &self.leaves[leaf as usize];
        partition(l.len, |i| self.cmp_key(l.score[i], l.id[i], score, id) == Ordering::Less)
    }

    /// The position of key (score, id), which is in the leaf: the first key of its score by the
    /// scores alone, then the ids of that score's run (no member bytes read, unlike a search).
    fn leaf_pos(&self, leaf: u32, score: f64, id: u32) -> usize {
        let l = &self.leaves[leaf as usize];
        let mut pos = partition(l.len, |i| l.score[i] < score);
        while pos < l.len && l.id[pos] != id {
            pos += 1;
        }
        pos
    }

    /// The child of an inner node whose range holds (score, id): the first whose last key is not
    /// below it, else the last.
    fn child_for(&self, node: u32, score: f64, id: u32) -> usize {
        let n = &self.inners[node as usize];
        let i = partition(n.len, |i| self.cmp_key(n.max_score[i], n.max_id[i], score, id) == Ordering::Less);
        i.min(n.len - 1)
    }

    /// Put (score, id) at `pos` of a leaf; the new right sibling if it had to split.
    fn leaf_insert(&mut self, leaf: u32, pos: usize, score: f64, id: u32) -> Option<u32> {
        let len = self.leaves[leaf as usize].len;
        if len < CAP {
            let l = &mut self.leaves[leaf as usize];
            l.score.copy_within(pos..len, pos + 1);
            l.id.copy_within(pos..len, pos + 1);
            (l.score[pos], l.id[pos], l.len) = (score, id, len + 1);
            return None;
        }
        // Full: split in halves, or (appending at the end, as a sorted load does) keep this one
        // full and start the next.
        let right = self.new_leaf();
        let keep = if pos == CAP { CAP } else { CAP / 2 };
        let (left_leaf, right_leaf) = two_mut(&mut self.leaves, leaf, right);
        let moved = CAP - keep;
        right_leaf.score[..moved].copy_from_slice(&left_leaf.score[keep..]);
        right_leaf.id[..moved].copy_from_slice(&left_leaf.id[keep..]);
        (left_leaf.len, right_leaf.len) = (keep, moved);
        if pos <= keep && pos < CAP {
            self.leaf_insert(leaf, pos, score, id);
        } else {
            self.leaf_insert(right, pos - keep, score, id);
        }
        Some(right)
    }

    /// Put a child at `pos` of an inner node; the new right sibling if it had to split.
    fn inner_insert(&mut self, node: u32, pos: usize, child: (u32, u32, f64, u32)) -> Option<u32> {
        let len = self.inners[node as usize].len;
        if len < CAP {
            let n = &mut self.inners[node as usize];
            n.child.copy_within(pos..len, pos + 1);
            n.size.copy_within(pos..len, pos + 1);
            n.max_score.copy_within(pos..len, pos + 1);
            n.max_id.copy_within(pos..len, pos + 1);
            n.set(pos, child);
            n.len = len + 1;
            return None;
        }
        let right = self.new_inner();
        let keep = if pos == CAP { CAP } else { CAP / 2 };
        let (l, r) = two_mut(&mut self.inners, node, right);
        let moved = CAP - keep;
        r.child[..moved].copy_from_slice(&l.child[keep..]);
        r.size[..moved].copy_from_slice(&l.size[keep..]);
        r.max_score[..moved].copy_from_slice(&l.max_score[keep..]);
        r.max_id[..moved].copy_from_slice(&l.max_id[keep..]);
        (l.len, r.len) = (keep, moved);
        if pos <= keep && pos < CAP {
            self.inner_insert(node, pos, child);
        } else {
            self.inner_insert(right, pos - keep, child);
        }
        Some(right)
    }

    /// Insert key (score, id) under `node` (at height `h`); the node's new right sibling if it split.
    fn insert_in(&mut self, node: u32, h: u32, score: f64, id: u32) -> Option<u32> {
        if h == 0 {
            let pos = self.leaf_rank(node, score, id);
            return self.leaf_insert(node, pos, score, id);
        }
        let i = self.child_for(node, score, id);
        let child = self.inners[node as usize].child[i];
        let split = self.insert_in(child, h - 1, score, id);
        let above = {
            let n = &self.inners[node as usize];
            self.cmp_key(score, id, n.max_score[i], n.max_id[i]) == Ordering::Greater
        };
        let n = &mut self.inners[node as usize];
        n.size[i] += 1;
        if above {
            (n.max_score[i], n.max_id[i]) = (score, id);
        }
        let right = split?;
        let left = self.summary(child, h - 1);
        self.inners[node as usize].set(i, left);
        let right = self.summary(right, h - 1);
        self.inner_insert(node, i + 1, right)
    }

    /// Link key (score, id) of a live slot into the tree.
    fn insert_key(&mut self, score: f64, id: u32) {
        if let Some(right) = self.insert_in(self.root, self.height, score, id) {
            let (left, right) = (self.summary(self.root, self.height), self.summary(right, self.height));
            let root = self.new_inner();
            let n = &mut self.inners[root as usize];
            n.set(0, left);
            n.set(1, right);
            n.len = 2;
            self.root = root;
            self.height += 1;
        }
        self.len += 1;
    }

    /// Remove child `i` of an inner node (its subtree already freed or moved).
    fn inner_remove(&mut self, node: u32, i: usize) {
        let n = &mut self.inners[node as usize];
        let len = n.len;
        n.child.copy_within(i + 1..len, i);
        n.size.copy_within(i + 1..len, i);
        n.max_score.copy_within(i + 1..len, i);
        n.max_id.copy_within(i + 1..len, i);
        n.len = len - 1;
    }

    /// Children `j` and `j + 1` of an inner node (at height `h + 1`): merge them when they fit in
    /// one node, else share their keys evenly.
    fn rebalance(&mut self, node: u32, j: usize, h: u32) {
        let (a, b) = (self.inners[node as usize].child[j], self.inners[node as usize].child[j + 1]);
        let total = self.node_len(a, h) + self.node_len(b, h);
        let keep = if total <= CAP { total } else { total / 2 };
        if h == 0 {
            let (l, r) = two_mut(&mut self.leaves, a, b);
            move_keys(&mut l.len, &mut r.len, keep, |from, to, n, dir| {
                shift(&mut l.score, &mut r.score, from, to, n, dir);
                shift(&mut l.id, &mut r.id, from, to, n, dir);
            });
        } else {
            let (l, r) = two_mut(&mut self.inners, a, b);
            move_keys(&mut l.len, &mut r.len, keep, |from, to, n, dir| {
                shift(&mut l.child, &mut r.child, from, to, n, dir);
                shift(&mut l.size, &mut r.size, from, to, n, dir);
                shift(&mut l.max_score, &mut r.max_score, from, to, n, dir);
                shift(&mut l.max_id, &mut r.max_id, from, to, n, dir);
            });
        }
        let left = self.summary(a, h);
        self.inners[node as usize].set(j, left);
        if total <= CAP {
            self.free_node(b, h);
            self.inner_remove(node, j + 1);
        } else {
            let right = self.summary(b, h);
            self.inners[node as usize].set(j + 1, right);
        }
    }

    /// Unlink key (score, id), which is in the tree, from under `node` (at height `h`).
    fn remove_in(&mut self, node: u32, h: u32, score: f64, id: u32) {
        if h == 0 {
            let pos = self.leaf_pos(node, score, id);
            let l = &mut self.leaves[node as usize];
            debug_assert!(pos < l.len && l.id[pos] == id, "key not in its leaf");
            let len = l.len;
            l.score.copy_within(pos + 1..len, pos);
            l.id.copy_within(pos + 1..len, pos);
            l.len = len - 1;
            return;
        }
        let i = self.child_for(node, score, id);
        let child = self.inners[node as usize].child[i];
        self.remove_in(child, h - 1, score, id);
        let left = self.node_len(child, h - 1);
        if left == 0 {
            self.free_node(child, h - 1);
            self.inner_remove(node, i);
            return;
        }
        let sum = self.summary(child, h - 1);
        self.inners[node as usize].set(i, sum);
        let siblings = self.inners[node as usize].len;
        if left < MIN && siblings > 1 {
            self.rebalance(node, if i + 1 < siblings { i } else { i - 1 }, h - 1);
        }
    }

    /// The last key of a non-empty node.
    fn last_key(&self, node: u32, h: u32) -> (f64, u32) {
        if h == 0 {
            let l = &self.leaves[node as usize];
            (l.score[l.len - 1], l.id[l.len - 1])
        } else {
            let n = &self.inners[node as usize];
            (n.max_score[n.len - 1], n.max_id[n.len - 1])
        }
    }

    /// Unlink the key at `rank` under `node` (at height `h`; `rank` below its entry count): its
    /// (score, id). The descent goes by the children's sizes, as [`Tree::at`] (no key compared,
    /// unlike [`Tree::remove_in`]), and a parent's summary of the child changes by one entry, its
    /// last key only when that was the key removed.
    fn remove_at_in(&mut self, node: u32, h: u32, rank: usize) -> (f64, u32) {
        if h == 0 {
            let l = &mut self.leaves[node as usize];
            let (len, key) = (l.len, (l.score[rank], l.id[rank]));
            l.score.copy_within(rank + 1..len, rank);
            l.id.copy_within(rank + 1..len, rank);
            l.len = len - 1;
            return key;
        }
        let n = &self.inners[node as usize];
        let (mut i, mut k) = (0, rank);
        while k >= n.size[i] as usize {
            k -= n.size[i] as usize;
            i += 1;
        }
        let (child, was_last) = (n.child[i], k + 1 == n.size[i] as usize);
        let key = self.remove_at_in(child, h - 1, k);
        let left = self.node_len(child, h - 1);
        if left == 0 {
            self.free_node(child, h - 1);
            self.inner_remove(node, i);
            return key;
        }
        let last = if was_last { Some(self.last_key(child, h - 1)) } else { None };
        let n = &mut self.inners[node as usize];
        n.size[i] -= 1;
        if let Some((score, id)) = last {
            (n.max_score[i], n.max_id[i]) = (score, id);
        }
        let siblings = n.len;
        if left < MIN && siblings > 1 {
            self.rebalance(node, if i + 1 < siblings { i } else { i - 1 }, h - 1);
        }
        key
    }

    /// Unlink the key at ascending `rank` (below `len`) from the tree (its slot stays): its
    /// (score, id).
    fn remove_at(&mut self, rank: usize) -> (f64, u32) {
        let key = self.remove_at_in(self.root, self.height, rank);
        self.len -= 1;
        self.collapse_root();
        key
    }

    /// A root inner node with one child gives way to that child.
    fn collapse_root(&mut self) {
        while self.height > 0 && self.inners[self.root as usize].len == 1 {
            let old = self.root;
            self.root = self.inners[old as usize].child[0];
            self.free_inners.push(old);
            self.height -= 1;
        }
    }

    /// Unlink key (score, id) from the tree (its slot stays).
    fn remove_key(&mut self, score: f64, id: u32) {
        self.remove_in(self.root, self.height, score, id);
        self.len -= 1;
        self.collapse_root();
    }

    // ---- entries --------------------------------------------------------------------------

    /// Add a member that is not present.
    pub fn insert(&mut self, member: &[u8], score: f64) {
        let slot = Slot { score, member: MemberBytes::from_slice(member) };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        let (h, slots, hasher) = (self.hash(member), &self.slots, &self.hasher);
        self.index.insert_unique(h, id, |&i| hasher.hash_one(&*slots[i as usize].member));
        self.member_bytes += heap_len(member);
        self.insert_key(score, id);
    }

    /// Set a member's score, adding it when absent: the previous score. An existing member keeps
    /// its slot and index entry; only its place in the order changes.
    pub fn set_score(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let Some(id) = self.id_of(member) else {
            self.insert(member, score);
            return None;
        };
        Some(self.rescore(SlotId(id), score))
    }

    /// A member's slot and score: one index lookup, the slot then kept for [`Tree::rescore`]
    /// (ZADD reads the score, decides, then writes, without a second lookup).
    pub fn slot(&self, member: &[u8]) -> Option<(SlotId, f64)> {
        self.id_of(member).map(|id| (SlotId(id), self.slots[id as usize].score))
    }

    /// Set the score of the live member at `slot` (from [`Tree::slot`], no change since): the
    /// previous score. Its place in the order moves; its slot and index entry stay.
    pub fn rescore(&mut self, slot: SlotId, score: f64) -> f64 {
        let id = slot.0;
        let old = self.slots[id as usize].score;
        if old.to_bits() != score.to_bits() {
            self.remove_key(old, id);
            self.slots[id as usize].score = score;
            self.insert_key(score, id);
        }
        old
    }

    /// Free a slot already unlinked from the tree; returns its member and score.
    fn release(&mut self, id: u32) -> (MemberBytes, f64) {
        let h = self.hash(&self.slots[id as usize].member);
        if let Ok(slot) = self.index.find_entry(h, |&i| i == id) {
            slot.remove();
        }
        let s = &mut self.slots[id as usize];
        let member = std::mem::take(&mut s.member);
        self.member_bytes -= heap_len(&member);
        self.free.push(id);
        (member, s.score)
    }

    /// Remove a member: its score, or None when absent.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let id = self.id_of(member)?;
        self.remove_key(self.slots[id as usize].score, id);
        let (_, score) = self.release(id);
        self.compact_if_sparse();
        Some(score)
    }

    /// Remove `count` entries from ascending `rank` on, handing each to `removed` in order.
    pub fn remove_ranks(&mut self, rank: usize, count: usize, mut removed: impl FnMut(MemberBytes, f64)) {
        let count = count.min(self.len.saturating_sub(rank));
        if count == 0 {
            return;
        }
        if count >= 64 && count * 4 >= self.len {
            // Most of the set: build the rest afresh (O(n)) rather than unlink each (O(count log n)).
            let mut fresh = Tree::with_capacity(self.len - count);
            let mut i = 0;
            let mut gone = Vec::with_capacity(count);
            self.walk(0, false, |m, s| {
                if i >= rank && i < rank + count {
                    gone.push((MemberBytes::from_slice(m), s));
                } else {
                    fresh.insert(m, s);
                }
                i += 1;
                true
            });
            *self = fresh;
            for (m, s) in gone {
                removed(m, s);
            }
            return;
        }
        // Each removal leaves the next entry at the same rank: one descent by sizes per entry
        // (ZPOPMIN's one entry: the leftmost path), no keys compared and no list of them kept.
        for _ in 0..count {
            let (_, id) = self.remove_at(rank);
            let (m, s) = self.release(id);
            removed(m, s);
        }
        self.compact_if_sparse();
    }

    /// Rebuild into fresh storage once fewer than a quarter of the slots are live, so memory
    /// follows the set down (amortised O(log n) per removal).
    fn compact_if_sparse(&mut self) {
        if self.slots.len() < 64 || self.len * 4 >= self.slots.len() {
            return;
        }
        let mut fresh = Tree::with_capacity(self.len);
        self.walk(0, false, |m, s| {
            fresh.insert(m, s);
            true
        });
        *self = fresh;
    }

    /// Check every invariant of the module doc (tests).
    #[cfg(all(test, not(feature = "loom")))]
    pub fn check(&self) {
        let mut seen = 0usize;
        let mut last: Option<(f64, u32)> = None;
        self.check_node(self.root, self.height, &mut seen, &mut last);
        assert_eq!(seen, self.len);
        assert_eq!(self.index.len(), self.len);
        assert_eq!(self.slots.len() - self.free.len(), self.len);
    }

    #[cfg(all(test, not(feature = "loom")))]
    fn check_node(&self, node: u32, h: u32, seen: &mut usize, last: &mut Option<(f64, u32)>) -> (usize, f64, u32) {
        if h == 0 {
            let l = &self.leaves[node as usize];
            assert!(l.len > 0 || (node == self.root && self.len == 0));
            for i in 0..l.len {
                if let Some((s, id)) = *last {
                    assert_eq!(self.cmp_key(s, id, l.score[i], l.id[i]), Ordering::Less);
                }
                assert_eq!(self.slots[l.id[i] as usize].score.to_bits(), l.score[i].to_bits());
                *last = Some((l.score[i], l.id[i]));
            }
            *seen += l.len;
            return (l.len, l.score[l.len.max(1) - 1], l.id[l.len.max(1) - 1]);
        }
        let n = &self.inners[node as usize];
        assert!(n.len > 0 && (n.len > 1 || node != self.root));
        let mut total = 0;
        for i in 0..n.len {
            let (size, s, id) = self.check_node(n.child[i], h - 1, seen, last);
            assert_eq!(size, n.size[i] as usize);
            assert_eq!((s.to_bits(), id), (n.max_score[i].to_bits(), n.max_id[i]));
            total += size;
        }
        (total, n.max_score[n.len - 1], n.max_id[n.len - 1])
    }
}

/// What a member's bytes take on the heap (none when inline), allocator rounding estimated at 16.
fn heap_len(member: &[u8]) -> usize {
    if member.len() > 22 { member.len() + 16 } else { 0 }
}

/// The first index in `0..len` where `before` stops holding (it holds on a prefix).
#[inline]
fn partition(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if before(mid) { lo = mid + 1 } else { hi = mid }
    }
    lo
}

/// Two distinct elements of a slice, mutably.
fn two_mut<T>(v: &mut [T], a: u32, b: u32) -> (&mut T, &mut T) {
    let (a, b) = (a as usize, b as usize);
    assert_ne!(a, b);
    if a < b {
        let (x, y) = v.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = v.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

/// Which way [`shift`] moves keys between two neighbouring nodes.
#[derive(Clone, Copy)]
enum Dir {
    /// The first `n` of the right node go to the left node's end (`from`: left's length).
    ToLeft,
    /// The last `n` of the left node (from `from`) go to the right node's front (`to`: right's
    /// length before).
    ToRight,
}

/// Move keys so that the left node of a pair holds `keep` of their `*l + *r`: `f(from, to, n,
/// dir)` moves the arrays, then the lengths are set.
fn move_keys(l: &mut usize, r: &mut usize, keep: usize, mut f: impl FnMut(usize, usize, usize, Dir)) {
    let total = *l + *r;
    if keep > *l {
        f(*l, *r, keep - *l, Dir::ToLeft);
    } else if keep < *l {
        f(keep, *r, *l - keep, Dir::ToRight);
    }
    (*l, *r) = (keep, total - keep);
}

/// One array's part of [`move_keys`].
fn shift<T: Copy>(l: &mut [T; CAP], r: &mut [T; CAP], from: usize, to: usize, n: usize, dir: Dir) {
    match dir {
        Dir::ToLeft => {
            l[from..from + n].copy_from_slice(&r[..n]);
            r.copy_within(n..to, 0);
        }
        Dir::ToRight => {
            r.copy_within(..to, n);
            r[..n].copy_from_slice(&l[from..from + n]);
        }
    }
}
