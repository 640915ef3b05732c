//! The set value (Redis's `t_set.c` data structure, no commands). Three forms:
//!
//! * `Ints` ([`IntSet`], OBJECT ENCODING `intset`): every member the canonical text of an i64, at
//!   most `set-max-intset-entries` of them. A set is created in it when its first member is an
//!   integer (`setTypeCreate`).
//! * `Packed` ([`Lp`]): a small set of strings, members in one buffer. Redis 7.0 has no such
//!   encoding, so it answers `hashtable` as 7.0 does for any set that is not an intset; it exists
//!   only to keep small sets small (at most [`PACKED_MAX_ENTRIES`] members of at most
//!   [`PACKED_MAX_VALUE`] bytes, Redis 7.2's listpack-set defaults).
//! * `Table` (an [`IndexSet`], `hashtable`): O(1) lookups and random picks by index.
//!
//! Conversions go one way, as Redis's: intset -> (packed ->) table, never back; a set that is
//! no longer an intset never becomes one again, whatever it is later emptied to.

use bytes::Bytes;
use indexmap::IndexSet;

use super::{Elem, IntSet, Lp, Member, PBox, TableHasher};
use crate::util::parse_i64;

/// Members a packed set of strings holds at most.
pub const PACKED_MAX_ENTRIES: usize = 128;
/// Bytes a member of a packed set of strings has at most.
pub const PACKED_MAX_VALUE: usize = 64;

/// `set-max-intset-entries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetLimits {
    pub max_intset_entries: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        SetLimits { max_intset_entries: 512 }
    }
}

impl SetLimits {
    /// Redis caps the intset at 2^30 members whatever the setting.
    fn intset_max(&self) -> usize {
        self.max_intset_entries.min(1 << 30)
    }
}

/// A set in one of its forms.
#[derive(Clone, Debug)]
pub enum Set {
    Ints(IntSet),
    Packed(Lp),
    Table(PBox<IndexSet<Elem, TableHasher>>),
}

impl Default for Set {
    fn default() -> Self {
        Set::Ints(IntSet::default())
    }
}

/// Members in the set's order (ascending for an intset).
pub enum SetIter<'a> {
    Ints(&'a IntSet, usize),
    Packed(super::lp::LpIter<'a>),
    Table(indexmap::set::Iter<'a, Elem>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Member<'a>;
    fn next(&mut self) -> Option<Member<'a>> {
        match self {
            SetIter::Ints(s, i) => {
                let n = s.get(*i)?;
                *i += 1;
                Some(Member::int(n))
            }
            SetIter::Packed(it) => it.next().map(Member::Slice),
            SetIter::Table(it) => it.next().map(|e| Member::Slice(e.as_bytes())),
        }
    }
}

impl Set {
    /// An empty set in the form its first member picks (`setTypeCreate`): an intset for an
    /// integer, else the string form.
    pub fn for_first(member: &[u8]) -> Set {
        if parse_i64(member).is_some() { Set::Ints(IntSet::default()) } else { Set::Packed(Lp::new()) }
    }

    /// A set built by adding `members` one by one to an empty intset, as SINTERSTORE & co and
    /// SPOP's rebuild do (`createIntsetObject` + `setTypeAdd`).
    pub fn from_members<'a>(members: impl IntoIterator<Item = &'a [u8]>, limits: &SetLimits) -> Set {
        let mut s = Set::default();
        for m in members {
            s.insert(m, limits);
        }
        s
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Ints(s) => s.len(),
            Set::Packed(lp) => lp.len(),
            Set::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What OBJECT ENCODING answers (Redis 7.0 has no listpack sets).
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Packed(_) | Set::Table(_) => "hashtable",
        }
    }

    /// Heap bytes held (an estimate for the table).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Set::Ints(s) => s.heap_bytes(),
            Set::Packed(lp) => lp.heap_bytes(),
            Set::Table(t) => {
                t.capacity() * (std::mem::size_of::<Elem>() + 16) + t.iter().map(Elem::heap_bytes).sum::<usize>()
            }
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => parse_i64(m).is_some_and(|n| s.contains(n)),
            Set::Packed(lp) => lp.find(m, 1).is_some(),
            Set::Table(t) => t.contains(m),
        }
    }

    /// Leave the intset (or the packed form) for a form that takes any member, sized for `len`
    /// members of at most `longest` bytes.
    fn convert_for_strings(&mut self, len: usize, longest: usize) {
        let fits = len <= PACKED_MAX_ENTRIES && longest <= PACKED_MAX_VALUE;
        match self {
            Set::Ints(s) if fits => {
                let mut lp = Lp::new();
                for n in s.iter() {
                    lp.push_back(&Member::int(n));
                }
                *self = Set::Packed(lp);
            }
            Set::Ints(s) => {
                let t: IndexSet<Elem, TableHasher> = s.iter().map(|n| Elem::new(&Member::int(n))).collect();
                *self = Set::Table(PBox::new(t));
            }
            Set::Packed(lp) if !fits => {
                let t: IndexSet<Elem, TableHasher> = lp.iter().map(Elem::new).collect();
                *self = Set::Table(PBox::new(t));
            }
            _ => {}
        }
    }

    /// Add `m`; whether it was new (`setTypeAdd`). An intset takes integers until it has more
    /// than `set-max-intset-entries`; any other member, or one too many, converts it.
    pub fn insert(&mut self, m: &[u8], limits: &SetLimits) -> bool {
        if let Set::Ints(s) = self {
            match parse_i64(m) {
                Some(n) => {
                    if !s.insert(n) {
                        return false;
                    }
                    if s.len() > limits.intset_max() || !s.has_room() {
                        let len = s.len();
                        self.convert_for_strings(len, 20);
                    }
                    return true;
                }
                None => {
                    let len = s.len() + 1;
                    self.convert_for_strings(len, m.len().max(20));
                }
            }
        }
        if let Set::Packed(lp) = self {
            if lp.find(m, 1).is_some() {
                return false;
            }
            if lp.len() < PACKED_MAX_ENTRIES && m.len() <= PACKED_MAX_VALUE {
                lp.push_back(m);
                return true;
            }
            self.convert_for_strings(usize::MAX, usize::MAX);
        }
        match self {
            Set::Table(t) => t.insert(Elem::new(m)),
            _ => unreachable!("converted above"),
        }
    }

    /// Remove `m`; whether it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => parse_i64(m).is_some_and(|n| s.remove(n)),
            Set::Packed(lp) => match lp.find(m, 1) {
                Some((pos, _)) => {
                    lp.remove_at(pos, 1);
                    true
                }
                None => false,
            },
            Set::Table(t) => t.swap_remove(m),
        }
    }

    pub fn iter(&self) -> SetIter<'_> {
        match self {
            Set::Ints(s) => SetIter::Ints(s, 0),
            Set::Packed(lp) => SetIter::Packed(lp.iter()),
            Set::Table(t) => SetIter::Table(t.iter()),
        }
    }

    /// The `i`-th member: O(1) in the intset and the table, a walk when packed.
    pub fn get_index(&self, i: usize) -> Option<Member<'_>> {
        match self {
            Set::Ints(s) => s.get(i).map(Member::int),
            Set::Packed(lp) => lp.get(i).map(Member::Slice),
            Set::Table(t) => t.get_index(i).map(|e| Member::Slice(e.as_bytes())),
        }
    }

    /// Remove and return the `i`-th member (SPOP's random pick).
    pub fn remove_index(&mut self, i: usize) -> Option<Bytes> {
        match self {
            Set::Ints(s) => s.remove_index(i).map(|n| Member::int(n).to_bytes()),
            Set::Packed(lp) => {
                let pos = lp.offset_of(i);
                if i >= lp.len() {
                    return None;
                }
                let out = Bytes::copy_from_slice(lp.at(pos).0);
                lp.remove_at(pos, 1);
                Some(out)
            }
            Set::Table(t) => t.swap_remove_index(i).map(|e| Bytes::copy_from_slice(&e)),
        }
    }

    /// Every member as owned bytes, in the set's order.
    pub fn to_vec(&self) -> Vec<Bytes> {
        self.iter().map(|m| m.to_bytes()).collect()
    }
}
