use super::*;

fn b(s: &str) -> &[u8] {
    s.as_bytes()
}

#[test]
fn lp_keeps_order_through_inserts_replacements_and_removals() {
    let mut lp = Lp::new();
    for s in ["a", "", "ccc", &"x".repeat(300)] {
        lp.push_back(s.as_bytes());
    }
    lp.push_front(b"first");
    assert_eq!(lp.len(), 5);
    let all: Vec<&[u8]> = lp.iter().collect();
    assert_eq!(all[..4], [b("first"), b("a"), b(""), b("ccc")]);
    assert_eq!(all[4].len(), 300);
    let (pos, i) = lp.find(b"ccc", 1).unwrap();
    assert_eq!(i, 3);
    lp.replace_at(pos, b"dddd");
    assert_eq!(lp.get(3), Some(b("dddd")));
    lp.remove_at(lp.offset_of(1), 2);
    assert_eq!(lp.iter().take(2).collect::<Vec<_>>(), [b("first"), b("dddd")]);
    assert_eq!(lp.pop_front().as_deref(), Some(b("first")));
    assert_eq!(lp.len(), 2);
    assert!(lp.find(b"a", 1).is_none());
}

#[test]
fn intset_widens_and_stays_sorted() {
    let mut s = IntSet::default();
    for n in [5, -3, 5, 300, 0] {
        s.insert(n);
    }
    assert_eq!(s.width(), 2);
    assert_eq!(s.iter().collect::<Vec<_>>(), [-3, 0, 5, 300]);
    s.insert(70000);
    assert_eq!(s.width(), 4);
    s.insert(i64::MIN);
    assert_eq!(s.width(), 8);
    assert_eq!(s.iter().collect::<Vec<_>>(), [i64::MIN, -3, 0, 5, 300, 70000]);
    assert!(s.contains(70000) && !s.contains(1));
    assert!(s.remove(i64::MIN) && !s.remove(i64::MIN));
    assert_eq!(s.width(), 8, "never narrows");
    assert_eq!(s.remove_index(0), Some(-3));
    assert_eq!(s.len(), 4);
}

#[test]
fn intset_lives_inline_until_its_members_pass_the_inline_bytes() {
    let mut s = IntSet::default();
    // 10 members 1 apart, whatever their magnitude: a 3-byte first and 9 one-byte gaps.
    for n in (0..10).rev() {
        assert!(s.insert(1_000_000 + n));
    }
    assert!(s.is_inline() && s.heap_bytes() == 0 && s.width() == 4);
    assert!(!s.insert(1_000_005));
    assert_eq!(s.iter().collect::<Vec<_>>(), (1_000_000..1_000_010).collect::<Vec<_>>());
    assert_eq!((s.get(0), s.get(9), s.get(10)), (Some(1_000_000), Some(1_000_009), None));
    assert!(s.contains(1_000_009) && !s.contains(999_999) && !s.contains(i64::MAX));
    // Extremes delta-code too (gaps up to 2^64 - 1).
    let mut e = IntSet::default();
    for n in [i64::MAX, i64::MIN] {
        assert!(e.insert(n));
    }
    // 10 bytes for the first (zigzag of MIN), 10 for the gap.
    assert!(e.is_inline() && e.width() == 8);
    assert_eq!(e.iter().collect::<Vec<_>>(), [i64::MIN, i64::MAX]);
    assert!(e.remove(i64::MIN) && !e.remove(i64::MIN));
    assert_eq!(e.iter().collect::<Vec<_>>(), [i64::MAX]);
    assert!(e.insert(0) && e.insert(-1) && e.insert(i64::MIN));
    assert!(!e.is_inline(), "29 bytes of deltas");
    assert_eq!(e.iter().collect::<Vec<_>>(), [i64::MIN, -1, 0, i64::MAX]);
    // Past INLINE bytes, or INLINE members, to the heap at the width reached; never back.
    let mut h = IntSet::default();
    for n in 0..30 {
        h.insert(n * 1000);
    }
    assert!(!h.is_inline() && h.width() == 2 && h.heap_bytes() == 60);
    assert_eq!(h.iter().collect::<Vec<_>>(), (0..30).map(|n| n * 1000).collect::<Vec<_>>());
    for n in 1..30 {
        assert!(h.remove(n * 1000));
    }
    assert!(!h.is_inline() && h.len() == 1);
    assert!(h.insert(1 << 40) && h.width() == 8);
    assert_eq!(h.iter().collect::<Vec<_>>(), [0, 1 << 40]);
    // Equality ignores where the members are held.
    let mut fresh = IntSet::default();
    fresh.insert(1 << 40);
    fresh.insert(0);
    assert!(fresh.is_inline());
    assert_eq!(fresh, h);
    // The inline form against a sorted Vec, over random inserts and removals.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut model: Vec<i64> = Vec::new();
    let mut t = IntSet::default();
    for _ in 0..3000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = match x % 4 {
            0 => (x >> 8) as i64,
            1 => ((x >> 8) % 70_000) as i64 - 35_000,
            _ => ((x >> 8) % 40) as i64,
        };
        if x % 3 == 0 {
            assert_eq!(t.remove(v), model.binary_search(&v).map(|i| model.remove(i)).is_ok());
        } else {
            assert_eq!(t.insert(v), model.binary_search(&v).map_err(|i| model.insert(i, v)).is_err());
        }
        assert_eq!(t.iter().collect::<Vec<_>>(), model);
        if t.len() > 40 {
            t = IntSet::default();
            model.clear();
        }
    }
}

#[test]
fn hash_converts_one_way_past_either_limit() {
    let l = HashLimits { max_listpack_entries: 3, max_listpack_value: 8 };
    let mut h = Hash::new();
    assert!(h.set(b"a", b"1", &l) && h.set(b"b", b"2", &l) && h.set(b"c", b"3", &l));
    assert!(!h.set(b"a", b"10", &l));
    assert_eq!(h.encoding(), "listpack");
    assert_eq!(h.iter().collect::<Vec<_>>(), [(b("a"), b("10")), (b("b"), b("2")), (b("c"), b("3"))]);
    assert!(h.remove(b"b"));
    assert_eq!(h.iter().map(|(f, _)| f).collect::<Vec<_>>(), [b("a"), b("c")]);
    h.set(b"d", b"4", &l);
    h.set(b"e", b"5", &l);
    assert_eq!((h.encoding(), h.len()), ("hashtable", 4));
    for f in ["a", "c", "d"] {
        h.remove(f.as_bytes());
    }
    assert_eq!((h.encoding(), h.get(b"e")), ("hashtable", Some(b("5"))));
    let mut h = Hash::new();
    h.set(b"f", b"123456789", &l);
    assert_eq!(h.encoding(), "hashtable");
    let mut h = Hash::new();
    h.try_conversion([b("f"), b("123456789")], &l);
    assert_eq!(h.encoding(), "hashtable");
}

#[test]
fn set_forms_follow_redis_and_report_7_0_encodings() {
    let l = SetLimits { max_intset_entries: 4 };
    let mut s = Set::for_first(b"3");
    for m in ["3", "1", "2", "1"] {
        s.insert(m.as_bytes(), &l);
    }
    assert_eq!(s.encoding(), "intset");
    assert_eq!(s.to_vec(), ["1", "2", "3"]);
    assert!(s.contains(b"2") && !s.contains(b"02") && !s.contains(b"x"));
    s.insert(b"x", &l);
    assert!(matches!(s, Set::Packed(_)));
    assert_eq!((s.encoding(), s.len()), ("hashtable", 4));
    s.remove(b"x");
    assert_eq!(s.encoding(), "hashtable", "one way");
    let mut s = Set::default();
    for n in 0..5 {
        s.insert(n.to_string().as_bytes(), &l);
    }
    assert_eq!(s.encoding(), "hashtable");
    let mut s = Set::for_first(b"a");
    for n in 0..200 {
        assert!(s.insert(format!("m{n}").as_bytes(), &l));
    }
    assert!(matches!(s, Set::Table(_)));
    assert!(s.contains(b"m199") && s.remove(b"m0") && !s.contains(b"m0"));
    let mut s = Set::for_first(b"a");
    s.insert(&[b'y'; 65], &l);
    assert!(matches!(s, Set::Table(_)));
    let built = Set::from_members([b("5"), b("-1")], &SetLimits::default());
    assert_eq!((built.encoding(), built.to_vec()), ("intset", vec!["-1".into(), "5".into()]));
    let mut popped = Set::from_members([b("a"), b("b")], &l);
    let got = popped.remove_index(1).unwrap();
    assert_eq!(popped.len(), 1);
    assert!(!popped.contains(&got));
}

#[test]
fn elem_is_inline_up_to_22_bytes_and_hashes_as_its_bytes() {
    use std::hash::BuildHasher;
    assert_eq!(std::mem::size_of::<Elem>(), 24);
    let short = Elem::new(b"0123456789012345678901");
    assert!(matches!(short, Elem::Inline { .. }));
    assert!(matches!(Elem::new(&[1u8; 23]), Elem::Heap(_)));
    let st = std::hash::RandomState::new();
    assert_eq!(st.hash_one(&short), st.hash_one(&b"0123456789012345678901"[..]));
    assert_eq!(&*Member::int(i64::MIN), b"-9223372036854775808");
}

/// Random edits to a [`List`] and a `VecDeque` model agree, for node limits by count and by
/// bytes, with elements whose length headers take 1 to 3 bytes.
#[test]
fn list_matches_a_deque_model_under_random_edits() {
    use std::collections::VecDeque;
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rnd = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for fill in [-2i64, -1, 1, 3, 0, -7] {
        let mut l = List::new(fill);
        let mut m: VecDeque<Vec<u8>> = VecDeque::new();
        for step in 0..6000 {
            let len = [0, 1, 5, 130, 20000][rnd(5)].min(if rnd(50) == 0 { 20000 } else { 130 });
            let v: Vec<u8> = (0..len).map(|i| (i + step) as u8).collect();
            match rnd(11) {
                0 | 1 => {
                    l.push_back(&v);
                    m.push_back(v);
                }
                2 | 3 => {
                    l.push_front(&v);
                    m.push_front(v);
                }
                4 => assert_eq!(l.pop_front().map(|b| b.to_vec()), m.pop_front()),
                5 => assert_eq!(l.pop_back().map(|b| b.to_vec()), m.pop_back()),
                6 if !m.is_empty() => {
                    let i = rnd(m.len());
                    assert!(l.set(i, &v));
                    m[i] = v;
                }
                7 => {
                    let i = rnd(m.len() + 1);
                    l.insert(i, &v);
                    m.insert(i, v);
                }
                8 if !m.is_empty() => {
                    let k = rnd(7);
                    l.retain_indexed(|i, _| i % 7 != k);
                    let mut i = 0;
                    m.retain(|_| {
                        i += 1;
                        (i - 1) % 7 != k
                    });
                }
                9 if !m.is_empty() => {
                    let (a, b) = (rnd(m.len().min(4) + 1), rnd(m.len().min(4) + 1));
                    l.drop_front(a.min(m.len()));
                    m.drain(..a.min(m.len()));
                    l.drop_back(b.min(m.len()));
                    let keep = m.len() - b.min(m.len());
                    m.truncate(keep);
                }
                _ if !m.is_empty() => {
                    let i = rnd(m.len());
                    assert_eq!(l.get(i), Some(&m[i][..]));
                    let j = i + rnd(m.len() - i);
                    let got: Vec<&[u8]> = l.range(i, j).collect();
                    assert_eq!(got, m.range(i..=j).map(|v| &v[..]).collect::<Vec<_>>());
                    let owned = l.range_bytes(i, j);
                    assert_eq!(owned.len(), j - i + 1);
                    assert_eq!(&owned[0][..], &m[i][..]);
                    // LRANGE's encoded reply: the same elements as an array of bulk strings.
                    let encoded = crate::resp::Frame::Encoded(l.range_encoded(i, j)).expand();
                    let bulks = m.range(i..=j).map(|v| crate::resp::Frame::Bulk(v.clone().into())).collect();
                    assert_eq!(encoded, crate::resp::Frame::Array(bulks));
                }
                _ => {}
            }
            assert_eq!(l.len(), m.len());
            if step % 97 == 0 {
                assert!(l.iter().eq(m.iter().map(|v| &v[..])), "fill {fill} step {step}");
                assert!(l.iter_rev().eq(m.iter().rev().map(|v| &v[..])), "fill {fill} step {step}");
                assert_eq!(l.front(), m.front().map(|v| &v[..]));
                assert_eq!(l.back(), m.back().map(|v| &v[..]));
            }
        }
    }
}

#[test]
fn list_nodes_respect_the_fill() {
    let l = List::from_items((0..100).map(|i| format!("{i:04}")), 10);
    assert_eq!(l.len(), 100);
    // 10 elements per node: 10 nodes.
    assert_eq!(l.node_count(), 10);
    let big = List::from_items((0..10000).map(|_| [7u8; 100]), -2);
    // 8 KiB nodes of 102-byte entries hold 80 each: about 126 nodes, not one per element.
    assert_eq!(big.node_count(), 10000usize.div_ceil(80));
    assert!(big.heap_bytes() < 10000 * 110, "{}", big.heap_bytes());
    let small = List::from_items(["a", "bb", "ccc"], -2);
    // One node, inline in the list, and 3 entries of 1 + len + 1 bytes: no allocation per
    // element, and none for a deque of nodes.
    assert_eq!(small.heap_bytes(), 12);
    // A fill past an i16 acts as the largest one (Redis clamps it to 32767).
    let wide = List::from_items((0..5000).map(|_| "ab"), 1 << 40);
    assert_eq!((wide.len(), wide.node_count()), (5000, List::from_items((0..5000).map(|_| "ab"), 32767).node_count()));
}

/// The handles stay small: a small collection's cost is its cell (lock, flag, handle) plus one buffer.
#[test]
fn value_handles_stay_small() {
    use crate::db::ValueCell;
    // A packed form is a 16-byte exact-size buffer handle; the large forms are boxed.
    assert_eq!(std::mem::size_of::<Hash>(), 16);
    // A set is 4-aligned and 28 bytes: its inline intset (see `intset::INLINE`).
    assert_eq!((std::mem::size_of::<Set>(), std::mem::align_of::<Set>()), (28, 4));
    // The one node inline, the count and the fill in one word.
    assert_eq!(std::mem::size_of::<List>(), 48);
    // 16-byte handle (4-aligned: the table is a `PBox`) + the lock, the `gone` flag readers check
    // without the lock (both in the lock's word, see `db::cell`) and `dead`: with the `Arc`'s two
    // counts 40 bytes, a 48-byte malloc chunk (64 when the cell was 40 bytes).
    assert_eq!((std::mem::size_of::<Hash>(), std::mem::align_of::<Hash>()), (16, 4));
    assert_eq!(std::mem::size_of::<ValueCell<Hash>>(), 24);
    assert_eq!(std::mem::size_of::<ValueCell<crate::db::zset::SortedSet>>(), 24);
    // A large hash's table behind its packed box reads and writes as before.
    let mut h = Hash::new();
    let limits = HashLimits { max_listpack_entries: 2, max_listpack_value: 64 };
    for i in 0..10 {
        h.set(format!("f{i}").as_bytes(), b"v", &limits);
    }
    assert_eq!((h.encoding(), h.len(), h.get(b"f7")), ("hashtable", 10, Some(&b"v"[..])));
}
