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
    assert!(matches!(s, IntSet::W16(_)));
    assert_eq!(s.iter().collect::<Vec<_>>(), [-3, 0, 5, 300]);
    s.insert(70000);
    assert!(matches!(s, IntSet::W32(_)));
    s.insert(i64::MIN);
    assert!(matches!(s, IntSet::W64(_)));
    assert_eq!(s.iter().collect::<Vec<_>>(), [i64::MIN, -3, 0, 5, 300, 70000]);
    assert!(s.contains(70000) && !s.contains(1));
    assert!(s.remove(i64::MIN) && !s.remove(i64::MIN));
    assert!(matches!(s, IntSet::W64(_)), "never narrows");
    assert_eq!(s.remove_index(0), Some(-3));
    assert_eq!(s.len(), 4);
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
