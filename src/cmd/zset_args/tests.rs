//! Every error text below was checked against redis-server 7.0.15 with the same arguments.

use super::*;

fn argv(line: &str) -> Vec<Bytes> {
    line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
}

fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.expect_err("an error").text()
}

#[test]
fn zadd_errors_come_in_redis_order() {
    let z = |line: &str| err(parse_zadd(&argv(line), false));
    assert_eq!(z("ZADD z nx xx 1 a"), "ERR XX and NX options at the same time are not compatible");
    assert_eq!(z("ZADD z gt lt 1 a"), "ERR GT, LT, and/or NX options at the same time are not compatible");
    assert_eq!(z("ZADD z incr 1 a 2 b"), "ERR INCR option supports a single increment-element pair");
    assert_eq!(z("ZADD z nx xx 1"), "ERR syntax error");
    assert_eq!(z("ZADD z x a"), "ERR value is not a valid float");
    assert_eq!(z("ZADD z nx xx x a"), "ERR XX and NX options at the same time are not compatible");
    assert_eq!(z("ZADD z incr 1 a x b"), "ERR INCR option supports a single increment-element pair");
    assert_eq!(z("ZADD z 1 a x b"), "ERR value is not a valid float");
    assert_eq!(err(parse_zadd(&argv("ZINCRBY z x a"), true)), "ERR value is not a valid float");
}

#[test]
fn zadd_flags_stop_at_the_first_score() {
    let line = argv("ZADD z XX ch GT 1 nx 2.5 b");
    let a = parse_zadd(&line, false).expect("valid");
    assert!(a.flags.xx && a.flags.ch && a.flags.gt && !a.flags.nx && !a.flags.incr);
    assert_eq!(a.pairs[..], [(1.0, &b"nx"[..]), (2.5, &b"b"[..])]);
    let line = argv("ZINCRBY z -inf m");
    let a = parse_zadd(&line, true).expect("valid");
    assert!(a.flags.incr);
    assert_eq!(a.pairs[..], [(f64::NEG_INFINITY, &b"m"[..])]);
}

#[test]
fn zrange_grammar_follows_redis() {
    let r = |line: &str| parse_range(&argv(line), 1, false, RangeKind::Auto, false);
    assert_eq!(
        err(r("ZRANGE z 0 -1 LIMIT 0 1")),
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    assert_eq!(err(r("ZRANGE z 0 -1 BYLEX")), "ERR min or max not valid string range item");
    assert_eq!(err(r("ZRANGE z 0 1 BYSCORE BYLEX")), "ERR syntax error");
    assert_eq!(err(r("ZRANGE z x 1")), "ERR value is not an integer or out of range");
    assert_eq!(
        err(r("ZRANGE z [a [b BYLEX WITHSCORES")),
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    );
    assert_eq!(err(r("ZRANGE z 0 1 REV REV")), "ERR syntax error");
    assert_eq!(err(r("ZRANGE z 0 10 BYSCORE LIMIT 1")), "ERR syntax error");
    assert_eq!(err(r("ZRANGE z 0 10 BYSCORE LIMIT 1 x")), "ERR value is not an integer or out of range");
    // LIMIT 0 -1 is Redis's "no limit", so it is accepted with a rank range.
    assert_eq!(r("ZRANGE z 0 -1 LIMIT 5 -1").expect("valid").by, RangeBy::Rank(0, -1));

    let a = r("ZRANGE z 5 (1 BYSCORE REV WITHSCORES LIMIT 1 1 LIMIT 0 2").expect("valid");
    let want = ScoreRange { min: 1.0, min_exclusive: true, max: 5.0, max_exclusive: false };
    assert_eq!(
        a,
        RangeArgs { by: RangeBy::Score(want), rev: true, withscores: true, limit: Limit { offset: 0, count: 2 } }
    );

    let by_score = |line: &str| parse_range(&argv(line), 1, false, RangeKind::Score, false);
    assert_eq!(err(by_score("ZRANGEBYSCORE z 1 2 BYLEX")), "ERR syntax error");
    assert_eq!(err(by_score("ZRANGEBYSCORE z nan 2")), "ERR min or max is not a float");
    assert_eq!(err(by_score("ZRANGEBYSCORE z [1 2")), "ERR min or max is not a float");
    let rev_lex = parse_range(&argv("ZREVRANGEBYLEX z [c - LIMIT 1 3"), 1, false, RangeKind::Lex, true);
    let a = rev_lex.expect("valid");
    assert_eq!(a.by, RangeBy::Lex(LexRange { min: LexBound::Min, max: LexBound::Inclusive(Bytes::from_static(b"c")) }));
    assert!(a.rev);
    assert_eq!(err(parse_range(&argv("ZREVRANGEBYLEX z + - REV"), 1, false, RangeKind::Lex, true)), "ERR syntax error");
    let store = parse_range(&argv("ZRANGESTORE d z 0 -1 WITHSCORES"), 2, true, RangeKind::Auto, false);
    assert_eq!(err(store), "ERR syntax error");
}

#[test]
fn set_operation_grammar_follows_redis() {
    let keys = |line: &str, name: &str| parse_setop_keys(&argv(line), 1, name).map(|(k, next)| (k.len(), next));
    assert_eq!(err(keys("ZUNION 0 z", "zunion")), "ERR at least 1 input key is needed for 'zunion' command");
    assert_eq!(err(keys("ZUNION -1 a", "zunion")), "ERR at least 1 input key is needed for 'zunion' command");
    assert_eq!(err(keys("ZUNION 2 a", "zunion")), "ERR syntax error");
    assert_eq!(err(keys("ZUNION x a", "zunion")), "ERR value is not an integer or out of range");
    assert_eq!(keys("ZUNION 2 a b WITHSCORES", "zunion").expect("valid"), (2, 4));

    let opts = |line: &str, op, store, card| {
        let v = argv(line);
        let (k, next) = parse_setop_keys(&v, 1, "x").expect("keys");
        parse_setop_options(&v, next, k.len(), op, store, card)
    };
    assert_eq!(err(opts("ZUNION 1 a WEIGHTS x", SetOp::Union, false, false)), "ERR weight value is not a float");
    assert_eq!(err(opts("ZINTER 1 a WEIGHTS nan", SetOp::Inter, false, false)), "ERR weight value is not a float");
    assert_eq!(err(opts("ZUNION 1 a WEIGHTS", SetOp::Union, false, false)), "ERR syntax error");
    assert_eq!(err(opts("ZUNION 1 a AGGREGATE avg", SetOp::Union, false, false)), "ERR syntax error");
    assert_eq!(err(opts("ZUNION 1 a AGGREGATE", SetOp::Union, false, false)), "ERR syntax error");
    assert_eq!(err(opts("ZDIFF 1 a WEIGHTS 1", SetOp::Diff, false, false)), "ERR syntax error");
    assert_eq!(err(opts("ZUNIONSTORE 1 a WITHSCORES", SetOp::Union, true, false)), "ERR syntax error");
    assert_eq!(err(opts("ZINTERCARD 1 z LIMIT -1", SetOp::Inter, false, true)), "ERR LIMIT can't be negative");
    assert_eq!(err(opts("ZINTERCARD 1 z LIMIT x", SetOp::Inter, false, true)), "ERR LIMIT can't be negative");
    assert_eq!(err(opts("ZINTERCARD 1 z WITHSCORES", SetOp::Inter, false, true)), "ERR syntax error");
    let o = opts("ZINTER 2 a b WEIGHTS 2 inf AGGREGATE max WITHSCORES AGGREGATE MIN", SetOp::Inter, false, false);
    let o = o.expect("valid");
    assert_eq!((o.weights, o.aggregate, o.withscores), (vec![2.0, f64::INFINITY], Aggregate::Min, true));
    assert_eq!(opts("ZINTERCARD 1 z LIMIT 3", SetOp::Inter, false, true).expect("valid").card_limit, 3);
}

#[test]
fn pop_and_randmember_counts_follow_redis() {
    assert_eq!(err(parse_pop_count(&argv("ZPOPMIN z x"))), "ERR value is out of range, must be positive");
    assert_eq!(err(parse_pop_count(&argv("ZPOPMIN z -1"))), "ERR value is out of range, must be positive");
    assert_eq!(err(parse_pop_count(&argv("ZPOPMIN z 1 2"))), "ERR syntax error");
    assert_eq!(parse_pop_count(&argv("ZPOPMIN z 0")), Ok(Some(0)));
    assert_eq!(parse_pop_count(&argv("ZPOPMIN z")), Ok(None));

    assert_eq!(err(parse_mpop(&argv("ZMPOP 0 z MIN"), 1)), "ERR numkeys should be greater than 0");
    assert_eq!(err(parse_mpop(&argv("ZMPOP x z MIN"), 1)), "ERR numkeys should be greater than 0");
    assert_eq!(err(parse_mpop(&argv("ZMPOP 1 z MIN COUNT 0"), 1)), "ERR count should be greater than 0");
    assert_eq!(err(parse_mpop(&argv("ZMPOP 1 z MIN COUNT x"), 1)), "ERR count should be greater than 0");
    assert_eq!(err(parse_mpop(&argv("ZMPOP 1 z MIN COUNT 1 COUNT 1"), 1)), "ERR syntax error");
    assert_eq!(err(parse_mpop(&argv("ZMPOP 1 z FOO"), 1)), "ERR syntax error");
    assert_eq!(err(parse_mpop(&argv("ZMPOP 2 z MIN"), 1)), "ERR syntax error");
    let v = argv("BZMPOP 0 2 a b max COUNT 3");
    assert_eq!(parse_mpop(&v, 2), Ok((&v[3..5], true, 3)));

    assert_eq!(err(parse_randmember(&argv("ZRANDMEMBER z x"))), "ERR value is not an integer or out of range");
    assert_eq!(
        err(parse_randmember(&argv("ZRANDMEMBER z -9223372036854775808"))),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(
        err(parse_randmember(&argv("ZRANDMEMBER z -9223372036854775807 WITHSCORES"))),
        "ERR value is out of range"
    );
    assert_eq!(err(parse_randmember(&argv("ZRANDMEMBER z 5 WITHSCORES x"))), "ERR syntax error");
    assert_eq!(parse_randmember(&argv("ZRANDMEMBER z -5 withscores")), Ok(Some((-5, true))));
    assert_eq!(parse_randmember(&argv("ZRANDMEMBER z")), Ok(None));
}
