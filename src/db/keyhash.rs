//! The key hash, computed once per command.
//!
//! A key's 64-bit hash ([`hash_key`]) picks its write-lock stripe (`Keyspace::stripe_of`, the
//! transaction epoch of `read_consistent`), its place in the map (part, bucket, fingerprint: see
//! `map`) and the buckets the lookup hint prefetches (`map::hint`). Every one of those goes through
//! [`hash_key`], so a command that reads or writes its key hashed it three times or more (a GET:
//! the epoch's stripe, the lookup, its prefetch).
//!
//! [`KeyHashed`] makes it once: while the command runs, its first key's hash is remembered with
//! the address and length of the key's bytes, and [`hash_key`] of the same bytes answers from
//! there. This is the way every lookup gets its hash, whatever type of value it finds: a new
//! command family hashes once without doing anything (`cmd::call` arms it for every command with
//! a first key).
//!
//! Why an address is enough: the memo is armed on a `&[u8]` that the guard borrows, so those bytes
//! are alive and unchanged (a shared borrow) for as long as it is armed; any slice with the same
//! start and length is a view of the very same bytes, so it has the same hash. Nothing else
//! (another key of a multi-key command, a key a handler built) matches, and is hashed as before.
//! An empty key's address may be shared by every empty slice: they all hash alike anyway.

#[cfg(not(feature = "loom"))]
use std::cell::Cell;
#[cfg(not(feature = "loom"))]
use std::sync::OnceLock;

/// The key's hash (see the module doc). Keyed (aHash with per-process random seeds), so that
/// clients cannot pile keys into one bucket. The environment variable `FLURRYDB_HASH_SEED` (a u64)
/// fixes the seeds, for tests that must know which stripe a key takes ([`hash_key_seeded`]).
#[cfg(not(feature = "loom"))]
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    let (ptr, len, hash) = MEMO.with(Cell::get);
    // (A slice is never at address 0: nothing armed matches nothing.)
    if ptr == key.as_ptr() as usize && len == key.len() {
        return hash;
    }
    compute(key)
}

#[cfg(not(feature = "loom"))]
fn compute(key: &[u8]) -> u64 {
    static STATE: OnceLock<ahash::RandomState> = OnceLock::new();
    STATE
        .get_or_init(|| match std::env::var("FLURRYDB_HASH_SEED").ok().and_then(|v| v.parse().ok()) {
            Some(seed) => seeded_state(seed),
            None => ahash::RandomState::new(),
        })
        .hash_one(key)
}

#[cfg(not(feature = "loom"))]
std::thread_local! {
    /// The armed key's (address, length, hash); address 0: none armed.
    static MEMO: Cell<(usize, usize, u64)> = const { Cell::new((0, 0, 0)) };
}

/// The hash of a command's key, remembered while it is alive (see the module doc): [`hash_key`] of
/// the same bytes on this thread costs two compares. Dropping it restores what was armed before
/// (a script's or a transaction's inner command arms its own key inside the outer command's run).
pub struct KeyHashed<'a> {
    #[cfg(not(feature = "loom"))]
    outer: (usize, usize, u64),
    _key: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> KeyHashed<'a> {
    /// Hash `key` (or take `hash`, its hash already made by a prefetch) and remember it.
    #[cfg(not(feature = "loom"))]
    #[inline]
    pub fn arm(key: &'a [u8], hash: Option<u64>) -> KeyHashed<'a> {
        let hash = hash.unwrap_or_else(|| hash_key(key));
        debug_assert_eq!(hash, compute(key), "a prefetched hash is the key's");
        let outer = MEMO.with(|m| m.replace((key.as_ptr() as usize, key.len(), hash)));
        KeyHashed { outer, _key: std::marker::PhantomData }
    }

    /// Under loom the hash is cheap and nothing is remembered.
    #[cfg(feature = "loom")]
    pub fn arm(_key: &'a [u8], _hash: Option<u64>) -> KeyHashed<'a> {
        KeyHashed { _key: std::marker::PhantomData }
    }
}

impl Drop for KeyHashed<'_> {
    fn drop(&mut self) {
        #[cfg(not(feature = "loom"))]
        MEMO.with(|m| m.set(self.outer));
    }
}

#[cfg(not(feature = "loom"))]
fn seeded_state(seed: u64) -> ahash::RandomState {
    ahash::RandomState::with_seeds(seed, seed ^ 0x9e37_79b9_7f4a_7c15, seed.rotate_left(17), !seed)
}

/// [`hash_key`] of a server started with `FLURRYDB_HASH_SEED=seed`.
#[cfg(not(feature = "loom"))]
pub fn hash_key_seeded(seed: u64, key: &[u8]) -> u64 {
    seeded_state(seed).hash_one(key)
}

/// Under loom the hash takes no seed.
#[cfg(feature = "loom")]
pub fn hash_key_seeded(_seed: u64, key: &[u8]) -> u64 {
    hash_key(key)
}

/// Under loom: FNV-1a, fixed, so that the models know which stripe each key takes.
#[cfg(feature = "loom")]
pub fn hash_key(key: &[u8]) -> u64 {
    crate::util::fnv1a(crate::util::FNV_OFFSET, key)
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn the_armed_key_answers_from_the_memo_and_only_it() {
        let buf = b"key:1key:1".to_vec();
        let (a, b) = (&buf[..5], &buf[5..]);
        let (ha, hb) = (compute(a), compute(b));
        assert_eq!(ha, hb, "equal bytes, equal hash");
        {
            // A wrong hash armed on purpose shows which path answered.
            let _g = KeyHashed {
                outer: MEMO.with(|m| m.replace((a.as_ptr() as usize, a.len(), 7))),
                _key: Default::default(),
            };
            assert_eq!(hash_key(a), 7, "the armed bytes answer from the memo");
            assert_eq!(hash_key(b), hb, "the same text elsewhere is hashed");
            assert_eq!(hash_key(&a[..4]), compute(&a[..4]), "a prefix at the same address is hashed");
            {
                let _inner = KeyHashed::arm(b, None);
                assert_eq!(hash_key(b), hb);
                assert_eq!(hash_key(a), ha, "an inner key replaces the outer one while armed");
            }
            assert_eq!(hash_key(a), 7, "the outer key is armed again after the inner one");
        }
        assert_eq!(hash_key(a), ha, "disarmed: hashed");
        assert_eq!(MEMO.with(Cell::get).0, 0);
    }

    #[test]
    fn an_armed_key_hashes_as_an_unarmed_one() {
        let key = b"some key".to_vec();
        let want = compute(&key);
        let g = KeyHashed::arm(&key, None);
        assert_eq!(hash_key(&key), want);
        drop(g);
        let _g = KeyHashed::arm(&key, Some(want));
        assert_eq!(hash_key(&key), want);
    }
}
