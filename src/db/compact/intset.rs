//! Sorted integers in the narrowest width that holds them all (Redis's `intset.c`): 2, 4 or 8
//! bytes per member, O(log n) lookup; inserts and removals move the tail (sets of at most
//! `set-max-intset-entries` members).

/// A sorted set of integers. Widens when a member needs it, never narrows (as Redis).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntSet {
    W16(Vec<i16>),
    W32(Vec<i32>),
    W64(Vec<i64>),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::W16(Vec::new())
    }
}

fn insert_sorted<T: Ord + Copy>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(_) => false,
        Err(i) => {
            // Exactly one more slot: small sets pay no doubling slack.
            v.reserve_exact(1);
            v.insert(i, x);
            true
        }
    }
}

fn remove_sorted<T: Ord + Copy>(v: &mut Vec<T>, x: T) -> bool {
    match v.binary_search(&x) {
        Ok(i) => {
            v.remove(i);
            if v.capacity() > 16 && v.capacity() > v.len() * 2 {
                v.shrink_to_fit();
            }
            true
        }
        Err(_) => false,
    }
}

impl IntSet {
    pub fn len(&self) -> usize {
        match self {
            IntSet::W16(v) => v.len(),
            IntSet::W32(v) => v.len(),
            IntSet::W64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        match self {
            IntSet::W16(v) => v.capacity() * 2,
            IntSet::W32(v) => v.capacity() * 4,
            IntSet::W64(v) => v.capacity() * 8,
        }
    }

    pub fn contains(&self, x: i64) -> bool {
        match self {
            IntSet::W16(v) => i16::try_from(x).is_ok_and(|x| v.binary_search(&x).is_ok()),
            IntSet::W32(v) => i32::try_from(x).is_ok_and(|x| v.binary_search(&x).is_ok()),
            IntSet::W64(v) => v.binary_search(&x).is_ok(),
        }
    }

    /// Add `x`; whether it was new.
    pub fn insert(&mut self, x: i64) -> bool {
        self.widen_for(x);
        match self {
            IntSet::W16(v) => insert_sorted(v, x as i16),
            IntSet::W32(v) => insert_sorted(v, x as i32),
            IntSet::W64(v) => insert_sorted(v, x),
        }
    }

    /// Widen so that `x` fits.
    fn widen_for(&mut self, x: i64) {
        let need = if i16::try_from(x).is_ok() {
            2
        } else if i32::try_from(x).is_ok() {
            4
        } else {
            8
        };
        match self {
            IntSet::W16(v) if need == 4 => *self = IntSet::W32(v.iter().map(|&n| i32::from(n)).collect()),
            IntSet::W16(v) if need == 8 => *self = IntSet::W64(v.iter().map(|&n| i64::from(n)).collect()),
            IntSet::W32(v) if need == 8 => *self = IntSet::W64(v.iter().map(|&n| i64::from(n)).collect()),
            _ => {}
        }
    }

    /// Remove `x`; whether it was there.
    pub fn remove(&mut self, x: i64) -> bool {
        match self {
            IntSet::W16(v) => i16::try_from(x).is_ok_and(|x| remove_sorted(v, x)),
            IntSet::W32(v) => i32::try_from(x).is_ok_and(|x| remove_sorted(v, x)),
            IntSet::W64(v) => remove_sorted(v, x),
        }
    }

    /// The `i`-th smallest member.
    pub fn get(&self, i: usize) -> Option<i64> {
        match self {
            IntSet::W16(v) => v.get(i).map(|&n| i64::from(n)),
            IntSet::W32(v) => v.get(i).map(|&n| i64::from(n)),
            IntSet::W64(v) => v.get(i).copied(),
        }
    }

    /// Remove and return the `i`-th smallest member.
    pub fn remove_index(&mut self, i: usize) -> Option<i64> {
        let x = self.get(i)?;
        self.remove(x);
        Some(x)
    }

    /// Members, smallest first.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i).unwrap_or_default())
    }
}
