//! The compact encodings of hashes, sets and lists (Redis's `listpack.c`, `intset.c`,
//! `quicklist.c`, no commands): what keeps a small collection in one or two allocations instead
//! of one per element, and the large forms' element type.
//!
//! * [`Elem`]: a string element of a large hash or set, inline (no allocation) up to 22 bytes.
//! * [`Lp`]: a packed run of strings in one buffer, walked linearly (listpack).
//! * [`IntSet`]: sorted integers, 16/32/64 bits wide (intset).
//! * [`Hash`], [`Set`], [`List`]: the values, switching encodings one way as Redis does.

mod elem;
mod hash;
mod intset;
mod list;
mod lp;
mod nodes;
mod set;
#[cfg(all(test, not(feature = "loom")))]
mod tests;
mod thin;

pub use elem::{Elem, Member};
pub use hash::{Hash, HashLimits};
pub use intset::IntSet;
pub use list::List;
pub use lp::Lp;
pub use set::{Set, SetLimits};
pub use thin::{PBox, THIN_MAX, ThinBuf};

/// The hasher of the large forms' tables (hashes, sets, the sorted set's member index): aHash,
/// keyed per table (clients cannot aim at one bucket), a few times cheaper than std's SipHash-1-3
/// on a 20-byte member, which hashing every HSET/SADD/ZADD of a hot key paid (as the keyspace's
/// `db::hash_key` already uses it).
pub type TableHasher = ahash::RandomState;
