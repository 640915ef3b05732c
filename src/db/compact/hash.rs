//! The hash value (Redis's `t_hash.c` data structure, no commands): `listpack` (fields and values
//! alternating in one [`Lp`], insertion order, linear lookups) while it has at most
//! `hash-max-listpack-entries` fields and no field or value longer than
//! `hash-max-listpack-value` bytes, `hashtable` (an [`IndexMap`]: O(1) lookups and random picks by
//! index) past them. A hash converts when a write would break a limit (`hashTypeTryConversion`
//! on HSET's arguments, `hashTypeSet`'s checks) and never converts back, as Redis.

use indexmap::IndexMap;

use super::{Elem, Lp, PBox, TableHasher};

/// `hash-max-listpack-entries` and `hash-max-listpack-value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    pub max_listpack_entries: usize,
    pub max_listpack_value: usize,
}

impl Default for HashLimits {
    /// Redis 7.0's defaults: 512 entries, 64 bytes.
    fn default() -> Self {
        HashLimits { max_listpack_entries: 512, max_listpack_value: 64 }
    }
}

/// A hash in either encoding.
#[derive(Clone, Debug)]
pub enum Hash {
    Packed(Lp),
    Table(PBox<IndexMap<Elem, Elem, TableHasher>>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Packed(Lp::new())
    }
}

/// Field/value pairs in the hash's order.
pub enum HashIter<'a> {
    Packed(super::lp::LpIter<'a>),
    Table(indexmap::map::Iter<'a, Elem, Elem>),
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HashIter::Packed(it) => Some((it.next()?, it.next()?)),
            HashIter::Table(it) => it.next().map(|(f, v)| (f.as_bytes(), v.as_bytes())),
        }
    }
}

impl Hash {
    pub fn new() -> Hash {
        Hash::default()
    }

    /// Fields held.
    pub fn len(&self) -> usize {
        match self {
            Hash::Packed(lp) => lp.len() / 2,
            Hash::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What OBJECT ENCODING answers.
    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Packed(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// Heap bytes held (an estimate for the table: its entries and index).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Hash::Packed(lp) => lp.heap_bytes(),
            Hash::Table(t) => {
                t.capacity() * (std::mem::size_of::<(Elem, Elem)>() + 16)
                    + t.iter().map(|(f, v)| f.heap_bytes() + v.heap_bytes()).sum::<usize>()
            }
        }
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Packed(lp) => lp.find(field, 2).map(|(pos, _)| lp.iter_from(pos).nth(1).unwrap_or_default()),
            Hash::Table(t) => t.get(field).map(|v| v.as_bytes()),
        }
    }

    pub fn contains_key(&self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(lp) => lp.find(field, 2).is_some(),
            Hash::Table(t) => t.contains_key(field),
        }
    }

    /// Convert to the table encoding (one way).
    pub fn convert(&mut self) {
        if let Hash::Packed(lp) = self {
            let mut t = IndexMap::with_capacity_and_hasher(lp.len() / 2, TableHasher::new());
            let mut it = lp.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                t.insert(Elem::new(f), Elem::new(v));
            }
            *self = Hash::Table(PBox::new(t));
        }
    }

    /// HSET's and HSETNX's check before they write (`hashTypeTryConversion`): any argument longer
    /// than the value limit converts the hash, whether or not it is then written.
    pub fn try_conversion<'a>(&mut self, args: impl IntoIterator<Item = &'a [u8]>, limits: &HashLimits) {
        if matches!(self, Hash::Packed(_)) && args.into_iter().any(|a| a.len() > limits.max_listpack_value) {
            self.convert();
        }
    }

    /// Set `field` to `value` (`hashTypeSet`); whether the field is new. Converts first when either
    /// is too long for the packed form, and after when the hash has too many fields.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: &HashLimits) -> bool {
        let too_long = field.len() > limits.max_listpack_value || value.len() > limits.max_listpack_value;
        if too_long || matches!(self, Hash::Packed(lp) if !lp.fits(field.len() + value.len() + 20)) {
            self.convert();
        }
        match self {
            Hash::Packed(lp) => {
                if let Some((pos, _)) = lp.find(field, 2) {
                    let (_, vpos) = lp.at(pos);
                    lp.replace_at(vpos, value);
                    return false;
                }
                // One reallocation for the pair.
                lp.extend([field, value]);
                if lp.len() / 2 > limits.max_listpack_entries {
                    self.convert();
                }
                true
            }
            // One lookup whether the field is new or not.
            Hash::Table(t) => t.insert(Elem::new(field), Elem::new(value)).is_none(),
        }
    }

    /// Remove `field`; whether it was there. The packed form keeps the others' order (as listpack).
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(lp) => match lp.find(field, 2) {
                Some((pos, _)) => {
                    lp.remove_at(pos, 2);
                    true
                }
                None => false,
            },
            Hash::Table(t) => t.swap_remove(field).is_some(),
        }
    }

    /// Field/value pairs: insertion order when packed.
    pub fn iter(&self) -> HashIter<'_> {
        match self {
            Hash::Packed(lp) => HashIter::Packed(lp.iter()),
            Hash::Table(t) => HashIter::Table(t.iter()),
        }
    }

    /// Every pair, for random picks by index (HRANDFIELD) and scans.
    pub fn pairs(&self) -> Vec<(&[u8], &[u8])> {
        self.iter().collect()
    }

    /// The `i`-th pair: O(1) in the table, a walk when packed.
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match self {
            Hash::Packed(_) => self.iter().nth(i),
            Hash::Table(t) => t.get_index(i).map(|(f, v)| (f.as_bytes(), v.as_bytes())),
        }
    }
}
