//! The large sorted set (Redis's `skiplist` encoding: `zskiplist` + `dict` in `t_zset.c`): an
//! order-statistics treap over (score, member) plus a hash index from member to node.
//!
//! Why a treap rather than a skiplist with spans: both give expected O(log n) insert, delete,
//! rank and select, but the treap's nodes sit in one `Vec` addressed by `u32` ids with a subtree
//! size in place of per-level forward pointers and spans, so a node is 40 bytes whatever its
//! height (Redis's skiplist node averages ~48 bytes plus its dict entry), needs no `unsafe`, and
//! range removals are two splits and a merge (O(log n) plus the removed nodes). The index is a
//! `hashbrown::HashTable` of node ids hashed by the member bytes stored in the node, so each member
//! is stored exactly once. Freed slots are reused through a free list.
//!
//! Invariants: `nodes[id].size` is the node count of the subtree at `id`; in-order traversal is
//! ascending by [`cmp_entry`]; priorities form a max-heap; the index holds exactly the live ids.

use std::cmp::Ordering;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::range::cmp_entry;

/// No node.
const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    score: f64,
    member: Box<[u8]>,
    left: u32,
    right: u32,
    size: u32,
    priority: u32,
}

/// The treap and its member index.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
    root: u32,
    /// Freed ids, reused first (their nodes hold an empty member).
    free: Vec<u32>,
    index: HashTable<u32>,
    hasher: std::hash::RandomState,
    /// xorshift state for priorities.
    rng: u64,
    member_bytes: usize,
}

impl Default for Tree {
    fn default() -> Self {
        let hasher = std::hash::RandomState::new();
        // Priorities from a per-set random seed: a client cannot choose members whose insertion
        // order lines up with the priorities and degrade the treap to a list.
        let rng = hasher.hash_one(0x2545_F491_4F6C_DD1Du64) | 1;
        Tree { nodes: Vec::new(), root: NIL, free: Vec::new(), index: HashTable::new(), hasher, rng, member_bytes: 0 }
    }
}

impl Tree {
    /// An empty tree with room for `n` members.
    pub fn with_capacity(n: usize) -> Tree {
        let mut t = Tree::default();
        t.nodes.reserve_exact(n);
        t.index.reserve(n, |_| 0);
        t
    }

    fn size(&self, id: u32) -> usize {
        if id == NIL { 0 } else { self.nodes[id as usize].size as usize }
    }

    fn fix(&mut self, id: u32) {
        let n = &self.nodes[id as usize];
        let size = 1 + self.size(n.left) + self.size(n.right);
        self.nodes[id as usize].size = size as u32;
    }

    /// Members held.
    pub fn len(&self) -> usize {
        self.size(self.root)
    }

    /// Heap bytes held (nodes, index, members, allocator rounding estimated at 16 per member).
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node>()
            + self.free.capacity() * 4
            + self.index.capacity() * (size_of::<u32>() + 1)
            + self.member_bytes
            + self.len() * 16
    }

    fn hash(&self, member: &[u8]) -> u64 {
        self.hasher.hash_one(member)
    }

    fn id_of(&self, member: &[u8]) -> Option<u32> {
        let nodes = &self.nodes;
        self.index.find(self.hash(member), |&id| *nodes[id as usize].member == *member).copied()
    }

    /// The member's score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.id_of(member).map(|id| self.nodes[id as usize].score)
    }

    /// The member's ascending rank and score.
    pub fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        let id = self.id_of(member)?;
        let (score, key) = (self.nodes[id as usize].score, &*self.nodes[id as usize].member);
        Some((self.count_before(|s, m| cmp_entry(s, m, score, key) == Ordering::Less), score))
    }

    /// The number of leading entries (in order) for which `before` holds, found by descent:
    /// exact when `before` holds on a prefix of the order (scores, or lex bounds over equal scores).
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let (mut id, mut acc) = (self.root, 0);
        while id != NIL {
            let n = &self.nodes[id as usize];
            if before(n.score, &n.member) {
                acc += self.size(n.left) + 1;
                id = n.right;
            } else {
                id = n.left;
            }
        }
        acc
    }

    /// The entry at ascending `rank`.
    pub fn at(&self, mut rank: usize) -> Option<(&[u8], f64)> {
        let mut id = self.root;
        while id != NIL {
            let n = &self.nodes[id as usize];
            let left = self.size(n.left);
            match rank.cmp(&left) {
                Ordering::Less => id = n.left,
                Ordering::Equal => return Some((&n.member, n.score)),
                Ordering::Greater => {
                    rank -= left + 1;
                    id = n.right;
                }
            }
        }
        None
    }

    /// Visit entries from ascending rank `start`, upward (or downward when `rev`), while `f`
    /// returns true.
    pub fn walk(&self, start: usize, rev: bool, mut f: impl FnMut(&[u8], f64) -> bool) {
        if start >= self.len() {
            return;
        }
        let child = |id: u32, toward_end: bool| {
            let n = &self.nodes[id as usize];
            if toward_end == rev { n.left } else { n.right }
        };
        // Descend to `start`, stacking the ancestors still to be visited after it.
        let mut stack = Vec::with_capacity(48);
        let (mut id, mut k) = (self.root, start);
        while id != NIL {
            let n = &self.nodes[id as usize];
            let left = self.size(n.left);
            match k.cmp(&left) {
                Ordering::Equal => {
                    stack.push(id);
                    break;
                }
                Ordering::Less => {
                    if !rev {
                        stack.push(id);
                    }
                    id = n.left;
                }
                Ordering::Greater => {
                    if rev {
                        stack.push(id);
                    }
                    k -= left + 1;
                    id = n.right;
                }
            }
        }
        while let Some(id) = stack.pop() {
            let n = &self.nodes[id as usize];
            if !f(&n.member, n.score) {
                return;
            }
            let mut next = child(id, true);
            while next != NIL {
                stack.push(next);
                next = child(next, false);
            }
        }
    }

    /// Join two treaps, every entry of `a` ordered before every entry of `b`. Sizes are updated
    /// from the nodes on the path only (a whole subtree joins), never from their siblings: a
    /// sibling is a cache miss in a large set.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        let (pa, pb) = (self.nodes[a as usize].priority, self.nodes[b as usize].priority);
        if pa >= pb {
            let add = self.nodes[b as usize].size;
            let r = self.nodes[a as usize].right;
            let merged = self.merge(r, b);
            let n = &mut self.nodes[a as usize];
            n.right = merged;
            n.size += add;
            a
        } else {
            let add = self.nodes[a as usize].size;
            let l = self.nodes[b as usize].left;
            let merged = self.merge(a, l);
            let n = &mut self.nodes[b as usize];
            n.left = merged;
            n.size += add;
            b
        }
    }

    /// Split into (entries ordered before node `key`, the rest); `key` itself is not linked.
    /// Each node on the path loses exactly the part split off below it (sizes from the path only).
    fn split_before(&mut self, id: u32, key: u32) -> (u32, u32) {
        if id == NIL {
            return (NIL, NIL);
        }
        let (n, k) = (&self.nodes[id as usize], &self.nodes[key as usize]);
        if cmp_entry(n.score, &n.member, k.score, &k.member) == Ordering::Less {
            let (l, r) = self.split_before(n.right, key);
            let lost = self.size(r) as u32;
            let n = &mut self.nodes[id as usize];
            n.right = l;
            n.size -= lost;
            (id, r)
        } else {
            let (l, r) = self.split_before(n.left, key);
            let lost = self.size(l) as u32;
            let n = &mut self.nodes[id as usize];
            n.left = r;
            n.size -= lost;
            (l, id)
        }
    }

    /// Split into (the first `k` entries, the rest).
    fn split_rank(&mut self, id: u32, k: usize) -> (u32, u32) {
        if id == NIL {
            return (NIL, NIL);
        }
        let left = self.size(self.nodes[id as usize].left);
        if k <= left {
            let (l, r) = self.split_rank(self.nodes[id as usize].left, k);
            self.nodes[id as usize].left = r;
            self.fix(id);
            (l, id)
        } else {
            let (l, r) = self.split_rank(self.nodes[id as usize].right, k - left - 1);
            self.nodes[id as usize].right = l;
            self.fix(id);
            (id, r)
        }
    }

    /// Add a member that is not present.
    pub fn insert(&mut self, member: &[u8], score: f64) {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let node = Node { score, member: member.into(), left: NIL, right: NIL, size: 1, priority: self.rng as u32 };
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let (h, nodes, hasher) = (self.hash(member), &self.nodes, &self.hasher);
        self.index.insert_unique(h, id, |&i| hasher.hash_one(&*nodes[i as usize].member));
        self.member_bytes += member.len();
        self.attach(id);
    }

    /// Link a detached node (children NIL) in at its place.
    fn attach(&mut self, id: u32) {
        self.root = self.attach_at(self.root, id);
    }

    /// Insert detached node `new` into the subtree at `id`, as a treap does: descend by order
    /// while the nodes outrank `new`'s priority (each gains one entry), then split the rest of the
    /// subtree around `new`, which takes its place. One descent, no merge.
    fn attach_at(&mut self, id: u32, new: u32) -> u32 {
        if id == NIL {
            return new;
        }
        let (n, k) = (&self.nodes[id as usize], &self.nodes[new as usize]);
        if k.priority > n.priority {
            let (l, r) = self.split_before(id, new);
            let size = 1 + self.size(l) + self.size(r);
            let k = &mut self.nodes[new as usize];
            (k.left, k.right, k.size) = (l, r, size as u32);
            return new;
        }
        if cmp_entry(n.score, &n.member, k.score, &k.member) == Ordering::Less {
            let r = self.attach_at(n.right, new);
            let n = &mut self.nodes[id as usize];
            n.right = r;
            n.size += 1;
        } else {
            let l = self.attach_at(n.left, new);
            let n = &mut self.nodes[id as usize];
            n.left = l;
            n.size += 1;
        }
        id
    }

    /// Unlink node `target` from the subtree at `id`: the subtree's new root. Every node on the
    /// path loses one entry.
    fn detach_from(&mut self, id: u32, target: u32) -> u32 {
        let (n, t) = (&self.nodes[id as usize], &self.nodes[target as usize]);
        let order = if id == target { Ordering::Equal } else { cmp_entry(n.score, &n.member, t.score, &t.member) };
        match order {
            Ordering::Equal => {
                let (l, r) = (n.left, n.right);
                let n = &mut self.nodes[id as usize];
                (n.left, n.right, n.size) = (NIL, NIL, 1);
                self.merge(l, r)
            }
            Ordering::Less => {
                let r = self.detach_from(n.right, target);
                let n = &mut self.nodes[id as usize];
                n.right = r;
                n.size -= 1;
                id
            }
            Ordering::Greater => {
                let l = self.detach_from(n.left, target);
                let n = &mut self.nodes[id as usize];
                n.left = l;
                n.size -= 1;
                id
            }
        }
    }

    fn detach(&mut self, id: u32) {
        self.root = self.detach_from(self.root, id);
    }

    /// Set a member's score, adding it when absent: the previous score. An existing member keeps
    /// its node and index slot; only its place in the order changes.
    pub fn set_score(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let Some(id) = self.id_of(member) else {
            self.insert(member, score);
            return None;
        };
        let old = self.nodes[id as usize].score;
        self.detach(id);
        self.nodes[id as usize].score = score;
        self.attach(id);
        Some(old)
    }

    /// Free a node already unlinked from the tree; returns its member and score.
    fn release(&mut self, id: u32) -> (Box<[u8]>, f64) {
        let h = self.hash(&self.nodes[id as usize].member);
        if let Ok(slot) = self.index.find_entry(h, |&i| i == id) {
            slot.remove();
        }
        let n = &mut self.nodes[id as usize];
        let member = std::mem::take(&mut n.member);
        self.member_bytes -= member.len();
        self.free.push(id);
        (member, n.score)
    }

    /// Remove a member: its score, or None when absent.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let id = self.id_of(member)?;
        self.detach(id);
        let (_, score) = self.release(id);
        self.compact_if_sparse();
        Some(score)
    }

    /// Remove `count` entries from ascending `rank` on, handing each to `removed` in order.
    pub fn remove_ranks(&mut self, rank: usize, count: usize, mut removed: impl FnMut(Box<[u8]>, f64)) {
        let (a, rest) = self.split_rank(self.root, rank);
        let (mid, b) = self.split_rank(rest, count);
        self.root = self.merge(a, b);
        // In order: descend left, stacking, then visit and take the right subtree.
        let mut ids = Vec::with_capacity(self.size(mid));
        let (mut stack, mut id) = (Vec::new(), mid);
        while id != NIL || !stack.is_empty() {
            while id != NIL {
                stack.push(id);
                id = self.nodes[id as usize].left;
            }
            let top = stack.pop().expect("non-empty");
            ids.push(top);
            id = self.nodes[top as usize].right;
        }
        for id in ids {
            let (m, s) = self.release(id);
            removed(m, s);
        }
        self.compact_if_sparse();
    }

    /// Rebuild into fresh storage once fewer than a quarter of the slots are live, so memory
    /// follows the set down (amortised O(log n) per removal).
    fn compact_if_sparse(&mut self) {
        if self.nodes.len() < 64 || self.len() * 4 >= self.nodes.len() {
            return;
        }
        let mut fresh = Tree::with_capacity(self.len());
        self.walk(0, false, |m, s| {
            fresh.insert(m, s);
            true
        });
        *self = fresh;
    }
}
