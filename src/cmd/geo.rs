//! Geo commands on sorted sets: GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH, GEOSEARCHSTORE,
//! GEORADIUS, GEORADIUSBYMEMBER and their _RO forms. Mirrors Redis's `geo.c` (the geohash and the
//! search are in [`crate::db::geo`]); the sorted set is reached only through `cmd::collection`
//! and `cmd::zset`.
//!
//! # AOF records
//! GEOADD runs as the ZADD Redis turns it into (and is logged as ZADD does: the members it
//! changed with their scores). A search that stores (STORE, STOREDIST, GEOSEARCHSTORE) holds the
//! source's and destination's stripes and is logged as given (deterministic over the same source)
//! when it stored or deleted the destination.

use bytes::Bytes;

use super::collection::{self, record};
use super::{Ctx, is_opt};
use crate::db::geo::{self, Found, Search, Shape};
use crate::db::zset::score::parse_score;
use crate::db::zset::{SortedSet, ZsetLimits};
use crate::db::{CellState, Entry};
use crate::error::{Error, Result};
use crate::longdouble::LongDouble;
use crate::pubsub::notify::class;
use crate::resp::Frame;

/// `getDoubleFromObjectOrReply`: `msg` replaces "value is not a valid float".
fn double(arg: &[u8], msg: Option<&str>) -> Result<f64> {
    parse_score(arg).ok_or_else(|| match msg {
        Some(m) => Error::err(m),
        None => Error::NotFloat,
    })
}

/// `extractLongLatOrReply`.
fn lon_lat(args: &[Bytes]) -> Result<(f64, f64)> {
    let lon = double(&args[0], None)?;
    let lat = double(&args[1], None)?;
    if !(geo::LONG_MIN..=geo::LONG_MAX).contains(&lon) || !(geo::LAT_MIN..=geo::LAT_MAX).contains(&lat) {
        return Err(Error::err(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

/// `extractUnitOrReply`: meters per unit.
fn unit(arg: &[u8]) -> Result<f64> {
    for (name, m) in [("m", 1.0), ("km", 1000.0), ("ft", 0.3048), ("mi", 1609.34)] {
        if is_opt(arg, name) {
            return Ok(m);
        }
    }
    Err(Error::err("unsupported unit provided. please use M, KM, FT, MI"))
}

/// `radius unit`: (radius, meters per unit).
fn radius(args: &[Bytes]) -> Result<(f64, f64)> {
    let r = double(&args[0], Some("need numeric radius"))?;
    if r < 0.0 {
        return Err(Error::err("radius cannot be negative"));
    }
    Ok((r, unit(&args[1])?))
}

/// `width height unit`.
fn box_args(args: &[Bytes]) -> Result<(f64, f64, f64)> {
    let w = double(&args[0], Some("need numeric width"))?;
    let h = double(&args[1], Some("need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(Error::err("height or width cannot be negative"));
    }
    Ok((w, h, unit(&args[2])?))
}

/// A coordinate as Redis prints it (`addReplyHumanLongDouble`).
fn coord(x: f64) -> Frame {
    Frame::Double(Bytes::from(LongDouble::from_f64(x).to_human_string()))
}

/// A distance with 4 decimals (`addReplyDoubleDistance`: llrint, then fixed point).
fn dist_frame(d: f64) -> Frame {
    if d == 0.0 {
        return Frame::Bulk(Bytes::from_static(b"0.0000"));
    }
    let v = (d * 10000.0).round_ties_even() as i64;
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    Frame::Bulk(Bytes::from(format!("{sign}{}.{:04}", a / 10000, a % 10000)))
}

/// The point stored at `member`, if it decodes.
fn member_point(z: &SortedSet, member: &[u8]) -> Option<(f64, f64)> {
    z.score(member).and_then(geo::decode_score)
}

/// `GEOADD key [NX|XX] [CH] longitude latitude member [...]`: run as ZADD with geohash scores.
pub fn geoadd(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let (mut xx, mut nx) = (false, false);
    let mut longidx = 2;
    while longidx < argv.len() {
        let opt = &argv[longidx];
        if is_opt(opt, "nx") {
            nx = true;
        } else if is_opt(opt, "xx") {
            xx = true;
        } else if !is_opt(opt, "ch") {
            break;
        }
        longidx += 1;
    }
    if !(argv.len() - longidx).is_multiple_of(3) || (xx && nx) {
        return Err(Error::Syntax);
    }
    let mut zargv: Vec<Bytes> = Vec::with_capacity(longidx + (argv.len() - longidx) / 3 * 2);
    zargv.push(Bytes::from_static(b"zadd"));
    zargv.extend(argv[1..longidx].iter().cloned());
    for el in argv[longidx..].chunks(3) {
        let (lon, lat) = lon_lat(el)?;
        let score = geo::score_of(lon, lat).unwrap_or(0);
        zargv.push(Bytes::from(score.to_string()));
        zargv.push(el[2].clone());
    }
    super::zset::zadd(ctx, &zargv)
}

/// `GEODIST key member1 member2 [M|KM|FT|MI]`.
pub fn geodist(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let to_meter = match argv.len() {
        5 => unit(&argv[4])?,
        n if n > 5 => return Err(Error::Syntax),
        _ => 1.0,
    };
    collection::read::<SortedSet, _>(ctx, &argv[1], |st| {
        let Some(z) = st.map(|st| &st.items) else { return Frame::Null };
        match (z.score(&argv[2]), z.score(&argv[3])) {
            (Some(a), Some(b)) => match (geo::decode_score(a), geo::decode_score(b)) {
                (Some((x1, y1)), Some((x2, y2))) => dist_frame(geo::distance(x1, y1, x2, y2) / to_meter),
                _ => Frame::Null,
            },
            _ => Frame::Null,
        }
    })
}

/// `GEOHASH key [member ...]`: 11-character standard geohashes.
pub fn geohash(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::read::<SortedSet, _>(ctx, &argv[1], |st| {
        Frame::Array(
            argv[2..]
                .iter()
                .map(|m| {
                    st.and_then(|st| st.items.score(m))
                        .and_then(geo::geohash_string)
                        .map_or(Frame::Null, |s| Frame::Bulk(Bytes::from(s)))
                })
                .collect(),
        )
    })
}

/// `GEOPOS key [member ...]`: `[longitude, latitude]` or a null array per member.
pub fn geopos(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    collection::read::<SortedSet, _>(ctx, &argv[1], |st| {
        Frame::Array(
            argv[2..]
                .iter()
                .map(|m| {
                    st.and_then(|st| member_point(&st.items, m))
                        .map_or(Frame::NullArray, |(x, y)| Frame::Array(vec![coord(x), coord(y)]))
                })
                .collect(),
        )
    })
}

/// Which command of the family (Redis's `georadiusGeneric` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GEORADIUS[_RO]: center from coordinates.
    Coords,
    /// GEORADIUSBYMEMBER[_RO]: center from a member.
    Member,
    /// GEOSEARCH / GEOSEARCHSTORE.
    Search,
}

#[derive(Clone, Copy)]
struct Flags {
    kind: Kind,
    /// The _RO forms: no STORE/STOREDIST.
    nostore: bool,
    /// GEOSEARCHSTORE.
    searchstore: bool,
}

/// What a search command does, once its arguments and the source are known.
enum Outcome {
    Reply(Frame),
    /// Replace the destination with these members (delete it when empty); reply their number.
    Store(Bytes, Vec<(Bytes, f64)>),
}

/// `georadiusGeneric` over the source set `z` (None: missing key). `src` is the index of the
/// source key.
fn radius_generic(argv: &[Bytes], z: Option<&SortedSet>, src: usize, f: Flags, resp3: bool) -> Result<Outcome> {
    let _ = src;
    let mut center = (0.0, 0.0);
    let mut shape = None;
    let mut conversion = 1.0;
    let mut storekey: Option<Bytes> = None;
    let mut storedist = false;
    let base = match f.kind {
        Kind::Coords => {
            center = lon_lat(&argv[2..4])?;
            let (r, c) = radius(&argv[4..6])?;
            shape = Some(Shape::Radius(r));
            conversion = c;
            6
        }
        Kind::Member => {
            if let Some(z) = z {
                center =
                    member_point(z, &argv[2]).ok_or_else(|| Error::err("could not decode requested zset member"))?;
                let (r, c) = radius(&argv[3..5])?;
                shape = Some(Shape::Radius(r));
                conversion = c;
            }
            5
        }
        Kind::Search => {
            if f.searchstore {
                storekey = Some(argv[1].clone());
                3
            } else {
                2
            }
        }
    };
    let search = f.kind == Kind::Search;
    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    #[derive(PartialEq)]
    enum Sort {
        None,
        Asc,
        Desc,
    }
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let rest = &argv[base.min(argv.len())..];
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        let left = rest.len() - i - 1;
        if is_opt(arg, "withdist") {
            withdist = true;
        } else if is_opt(arg, "withhash") {
            withhash = true;
        } else if is_opt(arg, "withcoord") {
            withcoord = true;
        } else if is_opt(arg, "any") {
            any = true;
        } else if is_opt(arg, "asc") {
            sort = Sort::Asc;
        } else if is_opt(arg, "desc") {
            sort = Sort::Desc;
        } else if is_opt(arg, "count") && left >= 1 {
            count = super::arg_i64(&rest[i + 1])?;
            if count <= 0 {
                return Err(Error::err("COUNT must be > 0"));
            }
            i += 1;
        } else if (is_opt(arg, "store") || is_opt(arg, "storedist")) && left >= 1 && !f.nostore && !search {
            storekey = Some(rest[i + 1].clone());
            storedist = is_opt(arg, "storedist");
            i += 1;
        } else if is_opt(arg, "storedist") && search && f.searchstore {
            storedist = true;
        } else if is_opt(arg, "frommember") && left >= 1 && search && !fromloc {
            if let Some(z) = z {
                center = member_point(z, &rest[i + 1])
                    .ok_or_else(|| Error::err("could not decode requested zset member"))?;
            }
            frommember = true;
            i += 1;
        } else if is_opt(arg, "fromlonlat") && left >= 2 && search && !frommember {
            center = lon_lat(&rest[i + 1..i + 3])?;
            fromloc = true;
            i += 2;
        } else if is_opt(arg, "byradius") && left >= 2 && search && !bybox {
            let (r, c) = radius(&rest[i + 1..i + 3])?;
            shape = Some(Shape::Radius(r));
            conversion = c;
            byradius = true;
            i += 2;
        } else if is_opt(arg, "bybox") && left >= 3 && search && !byradius {
            let (w, h, c) = box_args(&rest[i + 1..i + 4])?;
            shape = Some(Shape::Box(w, h));
            conversion = c;
            bybox = true;
            i += 3;
        } else {
            return Err(Error::Syntax);
        }
        i += 1;
    }
    if storekey.is_some() && (withdist || withhash || withcoord) {
        let what = if f.searchstore { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(Error::err(format!("{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")));
    }
    let name = String::from_utf8_lossy(&argv[0]);
    if search && !(frommember || fromloc) {
        return Err(Error::err(format!("exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")));
    }
    if search && !(byradius || bybox) {
        return Err(Error::err(format!("exactly one of BYRADIUS and BYBOX can be specified for {name}")));
    }
    if any && count == 0 {
        return Err(Error::err("the ANY argument requires COUNT argument"));
    }
    let Some(z) = z else {
        return Ok(match storekey {
            Some(k) => Outcome::Store(k, Vec::new()),
            None => Outcome::Reply(Frame::Array(Vec::new())),
        });
    };
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let s = Search { lon: center.0, lat: center.1, shape: shape.unwrap_or(Shape::Radius(0.0)), conversion };
    let mut found: Vec<Found> = geo::search(z, &s, if any { count as usize } else { 0 });
    let keep = if count > 0 { (count as usize).min(found.len()) } else { found.len() };
    if sort != Sort::None {
        geo::sort_found(&mut found, sort == Sort::Desc, keep);
    }
    if count > 0 {
        found.truncate(count as usize);
    }
    if let Some(k) = storekey {
        let entries =
            found.into_iter().map(|p| (p.member, if storedist { p.dist / conversion } else { p.score })).collect();
        return Ok(Outcome::Store(k, entries));
    }
    let _ = resp3;
    let with = withdist || withhash || withcoord;
    Ok(Outcome::Reply(Frame::Array(
        found
            .into_iter()
            .map(|p| {
                if !with {
                    return Frame::Bulk(p.member);
                }
                let mut item = vec![Frame::Bulk(p.member)];
                if withdist {
                    item.push(dist_frame(p.dist / conversion));
                }
                if withhash {
                    item.push(Frame::Integer(p.score as i64));
                }
                if withcoord {
                    item.push(Frame::Array(vec![coord(p.lon), coord(p.lat)]));
                }
                Frame::Array(item)
            })
            .collect(),
    )))
}

/// The keys a call may store into, found before running it so that their stripes are held: the
/// argument after every STORE/STOREDIST (GEORADIUS, GEORADIUSBYMEMBER), the destination
/// (GEOSEARCHSTORE). An argument taken for a key that is not one only locks one more stripe.
fn store_candidates(argv: &[Bytes], f: Flags) -> Vec<&[u8]> {
    if f.searchstore {
        return vec![&argv[1][..]];
    }
    if f.nostore || f.kind == Kind::Search {
        return Vec::new();
    }
    argv.windows(2).filter(|w| is_opt(&w[0], "store") || is_opt(&w[0], "storedist")).map(|w| &w[1][..]).collect()
}

fn zset_limits(ctx: &Ctx) -> ZsetLimits {
    let cfg = ctx.shared.config();
    ZsetLimits { max_listpack_entries: cfg.zset_max_listpack_entries, max_listpack_value: cfg.zset_max_listpack_value }
}

fn radius_command(ctx: &mut Ctx, argv: &[Bytes], src: usize, f: Flags) -> Result<Frame> {
    let resp3 = ctx.client.resp == 3;
    let dests = store_candidates(argv, f);
    if dests.is_empty() {
        let out = collection::read::<SortedSet, _>(ctx, &argv[src], |st: Option<&CellState<SortedSet>>| {
            radius_generic(argv, st.map(|st| &st.items), src, f, resp3)
        })??;
        return match out {
            Outcome::Reply(frame) => Ok(frame),
            // Not reached: a call that stores has a candidate destination.
            Outcome::Store(..) => Err(Error::Syntax),
        };
    }
    let mut keys = vec![&argv[src][..]];
    keys.extend(dests);
    let limits = zset_limits(ctx);
    let now = ctx.now_ms;
    let mut w = ctx.write(&keys);
    let cell = collection::lookup_write::<SortedSet>(&mut w, &argv[src], now);
    super::bits::count_lookup(ctx, &argv[src], !matches!(cell, Ok(None)));
    let cell = cell?;
    let out = match &cell {
        Some(cell) => {
            let st = cell.lock();
            radius_generic(argv, Some(&st.items), src, f, resp3)?
        }
        None => radius_generic(argv, None, src, f, resp3)?,
    };
    match out {
        Outcome::Reply(frame) => Ok(frame),
        Outcome::Store(dest, entries) => {
            let n = entries.len() as i64;
            if entries.is_empty() {
                if !w.lookup(&dest, now, |e| e.is_some()) {
                    return Ok(Frame::Integer(0));
                }
                w.map().remove(&dest);
                w.log(&record(argv));
                w.notify(class::GENERIC, "del", &dest);
            } else {
                w.insert(
                    Bytes::copy_from_slice(&dest),
                    Entry::collection(SortedSet::from_entries(entries, &limits), 0),
                );
                // Redis counts the members stored.
                w.log_n(&record(argv), n as u64);
                w.notify(class::ZSET, if f.searchstore { "geosearchstore" } else { "georadiusstore" }, &dest);
            }
            Ok(Frame::Integer(n))
        }
    }
}

const fn flags(kind: Kind, nostore: bool, searchstore: bool) -> Flags {
    Flags { kind, nostore, searchstore }
}

/// `GEORADIUS key longitude latitude radius unit [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT n [ANY]]
/// [ASC|DESC] [STORE key] [STOREDIST key]`.
pub fn georadius(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    radius_command(ctx, argv, 1, flags(Kind::Coords, false, false))
}

/// `GEORADIUS_RO`: GEORADIUS without STORE.
pub fn georadius_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    radius_command(ctx, argv, 1, flags(Kind::Coords, true, false))
}

/// `GEORADIUSBYMEMBER key member radius unit [...]`.
pub fn georadiusbymember(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    radius_command(ctx, argv, 1, flags(Kind::Member, false, false))
}

/// `GEORADIUSBYMEMBER_RO`.
pub fn georadiusbymember_ro(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    radius_command(ctx, argv, 1, flags(Kind::Member, true, false))
}

/// `GEOSEARCH key FROMMEMBER member|FROMLONLAT lon lat BYRADIUS r unit|BYBOX w h unit [ASC|DESC]
/// [COUNT n [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]`.
pub fn geosearch(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    radius_command(ctx, argv, 1, flags(Kind::Search, true, false))
}

/// `GEOSEARCHSTORE dest src ... [STOREDIST]`.
pub fn geosearchstore(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    radius_command(ctx, argv, 2, flags(Kind::Search, false, true))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, arr, bulk, err, int};
    use crate::resp::Frame;

    fn dbl(s: &str) -> Frame {
        Frame::Double(bytes::Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn sicily_as_in_redis() {
        // Replies recorded from redis-server 7.0.15 (the GEO* documentation examples).
        let mut h = Harness::new();
        assert_eq!(
            h.run(&["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]),
            int(2)
        );
        assert_eq!(h.run(&["GEODIST", "Sicily", "Palermo", "Catania"]), bulk("166274.1516"));
        assert_eq!(h.run(&["GEODIST", "Sicily", "Palermo", "Catania", "km"]), bulk("166.2742"));
        assert_eq!(
            h.run(&["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "ASC"]),
            arr(vec![arr(vec![bulk("Catania"), bulk("56.4413")]), arr(vec![bulk("Palermo"), bulk("190.4424")])])
        );
        assert_eq!(
            h.run(&["GEOPOS", "Sicily", "Palermo", "nope"]),
            arr(vec![arr(vec![dbl("13.36138933897018433"), dbl("38.11555639549629859")]), Frame::NullArray])
        );
        assert_eq!(
            h.run(&["GEOHASH", "Sicily", "Palermo", "Catania"]),
            arr(vec![bulk("sqc8b49rny0"), bulk("sqdtr74hyu0")])
        );
        assert_eq!(
            h.run(&["GEOADD", "Sicily", "200", "100", "x"]),
            err("ERR invalid longitude,latitude pair 200.000000,100.000000")
        );
        assert_eq!(
            h.run(&["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km", "ASC", "COUNT", "1"]),
            arr(vec![bulk("Catania")])
        );
        assert_eq!(
            h.run(&["GEOSEARCHSTORE", "dst", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "10", "km"]),
            int(1)
        );
        assert_eq!(
            h.run(&["GEOSEARCH", "Sicily", "BYRADIUS", "10", "km", "ASC", "WITHDIST"]),
            err("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH")
        );
    }
}
