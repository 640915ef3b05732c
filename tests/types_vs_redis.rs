//! HyperLogLogs, bitmaps and geo sets against a real redis-server 7.0: the same commands go to
//! both servers and every reply (errors included) and the bytes GET returns must be equal.
//! Skipped when redis-server is not installed (CI runs it with one).
#![cfg(not(feature = "loom"))]

mod common;

use common::{RealRedis, Server};

/// Both servers, or None (test skipped) without redis-server.
struct Pair {
    _real: RealRedis,
    _ours: Server,
    r: redis::Connection,
    o: redis::Connection,
}

impl Pair {
    fn new() -> Option<Pair> {
        let real = RealRedis::start(&["--appendonly", "no"])?;
        let ours = Server::start(&["--appendonly", "no"]);
        let r = real.client();
        let o = ours.client();
        Some(Pair { _real: real, _ours: ours, r, o })
    }

    /// Send `args` to both; the replies (Debug-rendered, errors included) must be equal.
    fn same<A: redis::ToRedisArgs + Clone>(&mut self, args: &[A]) -> String {
        let mut c = redis::cmd(&String::from_utf8_lossy(&args[0].to_redis_args()[0]));
        for a in &args[1..] {
            c.arg(a.clone());
        }
        let show = |v: redis::RedisResult<redis::Value>| match v {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error {e}"),
        };
        let (r, o) = (show(c.query(&mut self.r)), show(c.query(&mut self.o)));
        let shown: Vec<String> =
            args.iter().map(|a| String::from_utf8_lossy(&a.to_redis_args()[0]).chars().take(40).collect()).collect();
        if o != r {
            // Long values: where they first differ.
            let at = o.bytes().zip(r.bytes()).take_while(|(a, b)| a == b).count().saturating_sub(20);
            panic!("reply to {shown:?}: ours {:.300} / redis {:.300}", &o[at..], &r[at..]);
        }
        r
    }
}

#[test]
fn hll_counts_and_bytes_equal_redis() {
    let Some(mut p) = Pair::new() else { return };
    let mut seed = 7u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (key, max_bytes, total) in
        [("h1", "3000", 40), ("h2", "3000", 3000), ("h3", "200", 600), ("h4", "100000", 12000), ("h5", "3000", 60000)]
    {
        p.same(&["CONFIG", "SET", "hll-sparse-max-bytes", max_bytes]);
        p.same(&["PFADD", key]);
        p.same(&["GET", key]);
        let mut added = 0;
        let mut batch = 1;
        while added < total {
            let mut cmd = vec!["PFADD".to_string(), key.to_string()];
            for _ in 0..batch {
                // Repeats on purpose: some batches change nothing.
                cmd.push(format!("el:{}", next() % (total as u64 * 2)));
            }
            added += batch;
            batch = (batch * 2).min(500);
            p.same(&cmd);
            p.same(&["GET", key]);
            p.same(&["PFCOUNT", key]);
            p.same(&["GET", key]);
            p.same(&["PFDEBUG", "ENCODING", key]);
        }
    }
    p.same(&["CONFIG", "SET", "hll-sparse-max-bytes", "3000"]);
    // Unions: sparse with dense, into new and existing keys.
    p.same(&["PFCOUNT", "h1", "h2", "h3", "nokey"]);
    p.same(&["PFMERGE", "m1", "h1", "h3"]);
    p.same(&["GET", "m1"]);
    p.same(&["PFCOUNT", "m1"]);
    p.same(&["PFMERGE", "h1", "h2"]);
    p.same(&["GET", "h1"]);
    p.same(&["PFMERGE", "m2", "h4", "h5", "h2"]);
    p.same(&["PFCOUNT", "m2"]);
    p.same(&["GET", "m2"]);
    p.same(&["PFMERGE", "empty"]);
    p.same(&["GET", "empty"]);
    // A value copied from Redis works here and back.
    let bytes: Vec<u8> = redis::cmd("GET").arg("h3").query(&mut p.r).unwrap();
    redis::cmd("SET").arg("copy").arg(&bytes).query::<()>(&mut p.o).unwrap();
    redis::cmd("SET").arg("copy").arg(&bytes).query::<()>(&mut p.r).unwrap();
    p.same(&["PFADD", "copy", "x", "y", "z"]);
    p.same(&["PFCOUNT", "copy"]);
    p.same(&["GET", "copy"]);
    // Not an HLL, or a corrupted one.
    p.same(&["SET", "s", "hello"]);
    p.same(&["PFADD", "s", "a"]);
    p.same(&["PFCOUNT", "s"]);
    p.same(&["PFCOUNT", "s", "h1"]);
    p.same(&["RPUSH", "l", "a"]);
    p.same(&["PFADD", "l", "a"]);
    p.same(&["PFMERGE", "h1", "l"]);
    let mut bad = bytes.clone();
    bad.push(0x01);
    bad[15] |= 0x80;
    redis::cmd("SET").arg("bad").arg(&bad).query::<()>(&mut p.o).unwrap();
    redis::cmd("SET").arg("bad").arg(&bad).query::<()>(&mut p.r).unwrap();
    p.same(&["PFCOUNT", "bad"]);
    p.same(&["PFCOUNT", "bad", "h1"]);
    p.same(&["PFMERGE", "m3", "bad"]);
    // Crafted sparse values: opcodes that cover too few or too many registers.
    let hdr = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
    let xz = |n: u16| [0x40 | ((n - 1) >> 8) as u8, ((n - 1) & 0xff) as u8];
    let v = |val: u8, l: u8| 0x80 | ((val - 1) << 2) | (l - 1);
    let bodies: Vec<Vec<u8>> = vec![
        [&xz(16384)[..], &[v(1, 1)]].concat(),
        [&xz(16383)[..], &[v(1, 2)]].concat(),
        [&xz(16384)[..], &[0]].concat(),
        [&xz(16000)[..], &xz(1000)[..]].concat(),
        xz(16000).to_vec(),
        [&xz(16383)[..], &[v(2, 4), 0]].concat(),
        [&xz(100)[..], &[v(33 - 1, 1)], &xz(16283)[..]].concat(),
        // An XZERO cut short at the end (its second byte missing).
        [&xz(16000)[..], &[0x41]].concat(),
        [&xz(10)[..], &[0x7f]].concat(),
    ];
    for body in bodies {
        for cmd in [
            &["PFCOUNT", "x"][..],
            &["PFCOUNT", "x", "e"],
            &["PFMERGE", "y", "x"],
            &["PFDEBUG", "TODENSE", "x"],
            &["PFADD", "x", "a", "b", "c"],
            &["PFDEBUG", "GETREG", "x"],
        ] {
            for c in [&mut p.r, &mut p.o] {
                redis::cmd("DEL").arg("x").arg("y").query::<()>(c).unwrap();
                redis::cmd("SET").arg("x").arg([&hdr[..], &body[..]].concat()).query::<()>(c).unwrap();
            }
            p.same(cmd);
            p.same(&["GET", "x"]);
        }
    }
    p.same(&["PFDEBUG", "DECODE", "h3"]);
    p.same(&["PFDEBUG", "GETREG", "h3"]);
    p.same(&["GET", "h3"]);
    p.same(&["PFDEBUG", "NOPE", "h3"]);
}

#[test]
fn bitmaps_equal_redis() {
    let Some(mut p) = Pair::new() else { return };
    for cmd in [
        &["SETBIT", "b", "7", "1"][..],
        &["SETBIT", "b", "100", "1"],
        &["SET", "n", "-12345"],
        &["SETBIT", "n", "0", "1"],
        &["GET", "n"],
        &["BITFIELD", "f", "SET", "i64", "0", "-1", "INCRBY", "u63", "#1", "9223372036854775807", "GET", "i1", "#5"],
        &["BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u2", "200", "5"],
        &["GET", "f"],
        &[
            "BITFIELD",
            "f",
            "OVERFLOW",
            "SAT",
            "INCRBY",
            "i64",
            "0",
            "-9223372036854775808",
            "INCRBY",
            "u7",
            "3",
            "-900",
        ],
        &["BITOP", "XOR", "x", "b", "n", "f"],
        &["GET", "x"],
        &["BITOP", "OR", "x", "nope"],
        &["EXISTS", "x"],
        &["BITCOUNT", "f", "-5", "-1", "BIT"],
        &["BITPOS", "f", "0", "2", "-1", "BIT"],
        &["BITPOS", "x", "1"],
        &["SETBIT", "b", "536870912000", "1"],
        &["GETBIT", "b", "-1"],
        &["BITFIELD", "b", "GET", "i8", "#-1"],
        &["BITFIELD", "b", "OVERFLOW", "nope"],
        &["BITFIELD", "b", "GET", "i8"],
    ] {
        p.same(cmd);
    }
}

#[test]
fn geo_replies_equal_redis() {
    let Some(mut p) = Pair::new() else { return };
    let mut seed = 99u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // A fixed small set (packed encoding) with duplicates, poles, the antimeridian and the origin.
    let fixed = [
        ("13.361389", "38.115556", "Palermo"),
        ("15.087269", "37.502669", "Catania"),
        ("2.349014", "48.864716", "Paris"),
        ("2.349014", "48.864716", "Paris2"),
        ("-0.127758", "51.507351", "London"),
        ("179.999", "0.5", "east"),
        ("-179.999", "0.5", "west"),
        ("0", "0", "origin"),
        ("0", "85.05112878", "north"),
        ("0", "-85.05112878", "south"),
        ("-73.935242", "40.730610", "NYC"),
        ("139.691706", "35.689487", "Tokyo"),
        ("13.4", "38.1", "nearPalermo"),
        ("13.36", "38.11", "nearPalermo2"),
    ];
    let mut add = vec!["GEOADD".to_string(), "g".to_string()];
    for (lon, lat, m) in fixed {
        add.extend([lon.to_string(), lat.to_string(), m.to_string()]);
    }
    p.same(&add);
    // A big set (skiplist) of random points, clustered around Sicily and spread worldwide.
    let mut members = Vec::new();
    for i in 0..400 {
        let (lon, lat) = if i % 2 == 0 {
            (13.0 + (next() % 30000) as f64 / 10000.0, 37.0 + (next() % 20000) as f64 / 10000.0)
        } else {
            ((next() % 3_600_000) as f64 / 10000.0 - 180.0, (next() % 1_700_000) as f64 / 10000.0 - 85.0)
        };
        members.push(format!("m{i}"));
        p.same(&["GEOADD", "big", &format!("{lon:.6}"), &format!("{lat:.6}"), &format!("m{i}")]);
    }
    p.same(&["GEOADD", "g", "NX", "CH", "1", "1", "Palermo", "2", "2", "new"]);
    p.same(&["GEOADD", "g", "XX", "CH", "1", "1", "new", "2", "2", "new2"]);
    p.same(&["GEOADD", "g", "NX", "XX", "1", "1", "x"]);
    p.same(&["GEOADD", "g", "1", "1"]);
    p.same(&["GEOADD", "g", "1", "x", "m"]);
    p.same(&["GEOADD", "g", "-180.1", "0", "m"]);
    p.same(&["ZRANGE", "g", "0", "-1", "WITHSCORES"]);
    let mut all: Vec<String> = fixed.iter().map(|f| f.2.to_string()).collect();
    all.push("missing".into());
    for key in ["g", "big"] {
        let names = if key == "g" { &all } else { &members };
        let mut cmd = vec!["GEOPOS".to_string(), key.to_string()];
        cmd.extend(names.iter().cloned());
        p.same(&cmd);
        cmd[0] = "GEOHASH".into();
        p.same(&cmd);
        for _ in 0..40 {
            let a = &names[(next() % names.len() as u64) as usize];
            let b = &names[(next() % names.len() as u64) as usize];
            let unit = ["m", "km", "ft", "mi", "KM"][(next() % 5) as usize];
            p.same(&["GEODIST", key, a, b, unit]);
        }
    }
    let units = ["m", "km", "mi", "ft"];
    for q in 0..600 {
        let key = if q % 3 == 0 { "g" } else { "big" };
        let names = if key == "g" { &all } else { &members };
        let unit = units[(next() % 4) as usize];
        let radius = ["1", "50", "200", "1000", "5000", "20000", "0"][(next() % 7) as usize];
        let radius = match unit {
            "m" => format!("{radius}000"),
            "ft" => format!("{radius}0000"),
            _ => radius.to_string(),
        };
        let (lon, lat) = if next() % 2 == 0 {
            ("15".to_string(), "37".to_string())
        } else {
            (
                format!("{:.4}", (next() % 3_600_000) as f64 / 10000.0 - 180.0),
                format!("{:.4}", (next() % 1_700_000) as f64 / 10000.0 - 85.0),
            )
        };
        let member = names[(next() % names.len() as u64) as usize].clone();
        let mut opts: Vec<String> = Vec::new();
        for o in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
            if next() % 3 == 0 {
                opts.push(o.into());
            }
        }
        match next() % 3 {
            0 => opts.push("ASC".into()),
            1 => opts.push("DESC".into()),
            _ => {}
        }
        if next() % 3 == 0 {
            opts.extend(["COUNT".to_string(), (1 + next() % 5).to_string()]);
            if next() % 3 == 0 {
                opts.push("ANY".into());
            }
        }
        let mut cmd: Vec<String> = match q % 5 {
            0 => vec!["GEORADIUS".into(), key.into(), lon, lat, radius, unit.into()],
            1 => vec!["GEORADIUSBYMEMBER_RO".into(), key.into(), member, radius, unit.into()],
            2 => vec![
                "GEOSEARCH".into(),
                key.into(),
                "FROMLONLAT".into(),
                lon,
                lat,
                "BYRADIUS".into(),
                radius,
                unit.into(),
            ],
            3 => {
                let w = format!("{}", 1 + next() % 3000);
                let h = format!("{}", 1 + next() % 3000);
                vec!["GEOSEARCH".into(), key.into(), "FROMMEMBER".into(), member, "BYBOX".into(), w, h, "km".into()]
            }
            _ => vec!["GEORADIUS_RO".into(), key.into(), lon, lat, radius, unit.into()],
        };
        cmd.extend(opts.iter().cloned());
        p.same(&cmd);
        // The same search stored, with distances or hashes as scores.
        if q % 5 != 4 && q % 5 != 1 {
            let plain: Vec<String> = cmd.iter().filter(|a| !a.starts_with("WITH")).cloned().collect();
            let stored = if q % 5 >= 2 {
                let mut s = vec!["GEOSEARCHSTORE".to_string(), "dst".to_string()];
                s.extend(plain[1..].iter().cloned());
                if next() % 2 == 0 {
                    s.push("STOREDIST".into());
                }
                s
            } else {
                let mut s = plain.clone();
                s.extend([if next() % 2 == 0 { "STORE" } else { "STOREDIST" }.to_string(), "dst".to_string()]);
                s
            };
            p.same(&stored);
            p.same(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]);
        }
    }
    for bad in [
        &["GEORADIUS", "g", "15", "37", "-1", "km"][..],
        &["GEORADIUS", "g", "15", "37", "x", "km"],
        &["GEORADIUS", "g", "15", "37", "1", "parsec"],
        &["GEORADIUS", "g", "15", "37", "1", "km", "COUNT", "0"],
        &["GEORADIUS", "g", "15", "37", "1", "km", "ANY"],
        &["GEORADIUS", "g", "15", "37", "1", "km", "WITHDIST", "STORE", "d"],
        &["GEORADIUS_RO", "g", "15", "37", "1", "km", "STORE", "d"],
        &["GEORADIUSBYMEMBER", "g", "nobody", "1", "km"],
        &["GEORADIUSBYMEMBER", "nokey", "nobody", "x", "km"],
        &["GEORADIUSBYMEMBER", "nokey", "nobody", "1", "km", "STORE", "g"],
        &["EXISTS", "g"],
        &["GEOSEARCH", "big", "FROMMEMBER", "m1", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km"],
        &["GEOSEARCH", "big", "FROMLONLAT", "1", "2", "BYBOX", "1", "-2", "km"],
        &["GEOSEARCH", "big", "FROMLONLAT", "1", "2", "BYBOX", "1", "x", "km"],
        &["GEOSEARCH", "big", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"],
        &["GEOSEARCH", "big", "FROMLONLAT", "1", "2", "WITHDIST", "ASC"],
        &["geosearch", "big", "BYRADIUS", "1", "km", "WITHDIST", "ASC"],
        &["GEOSEARCHSTORE", "d", "big", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "WITHDIST"],
        &["GEOSEARCHSTORE", "d", "big", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km", "STORE", "x"],
        &["GEODIST", "g", "Palermo", "Catania", "km", "x"],
        &["GEODIST", "g", "Palermo", "Catania", "parsec"],
        &["GEODIST", "nokey", "a", "b"],
        &["SET", "str", "x"],
        &["GEOADD", "str", "1", "1", "a"],
        &["GEOPOS", "str", "a"],
        &["GEOSEARCH", "str", "FROMLONLAT", "1", "2", "BYRADIUS", "1", "km"],
        &["GEORADIUS", "g", "15", "37", "1", "km", "STORE", "str"],
        &["TYPE", "str"],
        &["ZADD", "g", "inf", "bad"],
        &["GEOPOS", "g", "bad"],
        &["GEOHASH", "g", "bad"],
        &["ZADD", "g", "-1", "neg", "1e300", "huge", "-inf", "ninf", "4503599627370496", "edge"],
        &["GEOPOS", "g", "neg", "huge", "ninf", "edge"],
        &["GEOHASH", "g", "neg", "huge", "ninf", "edge"],
        &["GEODIST", "g", "neg", "huge"],
        &["GEODIST", "g", "edge", "Palermo", "mi"],
    ] {
        p.same(bad);
    }
}
