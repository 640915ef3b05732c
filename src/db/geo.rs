//! Geo points on sorted sets: Redis's 52-bit geohash (`geohash.c`, `geohash_helper.c`) and its
//! search by the 9 boxes around a point, with the same f64 arithmetic, so scores, distances and
//! which members a search finds (and in which order) are Redis's. No commands here (`cmd::geo`).
//!
//! A point is stored as a sorted-set score: the interleaved bits of its latitude and longitude
//! offsets (26 steps each, latitude in the even bits) within [-180, 180] x [-85.05112878,
//! 85.05112878]. A search picks a step from the radius, takes the cell holding the center and its
//! 8 neighbours (dropping those the bounding box does not reach), walks each cell's score range
//! in the set, and keeps the points whose haversine distance (or box test) holds.

use bytes::Bytes;

use super::zset::{Limit, ScoreRange, SortedSet};

pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
/// 26 * 2 = 52 bits.
pub const STEP_MAX: u8 = 26;
const D_R: f64 = std::f64::consts::PI / 180.0;
/// Earth's quadratic mean radius for WGS-84, as Redis.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

/// A geohash: `step` bits of each coordinate, interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hash {
    pub bits: u64,
    pub step: u8,
}

impl Hash {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Range {
    min: f64,
    max: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Area {
    lon: Range,
    lat: Range,
}

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] =
        [0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x00FF00FF00FF00FF, 0x0000FFFF0000FFFF];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (u64::from(xlo), u64::from(ylo));
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (interleaved, interleaved >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

const WGS84_LON: Range = Range { min: LONG_MIN, max: LONG_MAX };
const WGS84_LAT: Range = Range { min: LAT_MIN, max: LAT_MAX };

/// `geohashEncode` (None where Redis returns 0).
fn encode_in(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<Hash> {
    if step > 32 || step == 0 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let mut lat_offset = (lat - lat_r.min) / (lat_r.max - lat_r.min);
    let mut lon_offset = (lon - lon_r.min) / (lon_r.max - lon_r.min);
    lat_offset *= (1u64 << step) as f64;
    lon_offset *= (1u64 << step) as f64;
    Some(Hash { bits: interleave64(lat_offset as u32, lon_offset as u32), step })
}

/// The geohash of a point at `step` in Redis's WGS84 ranges.
pub fn encode(lon: f64, lat: f64, step: u8) -> Option<Hash> {
    encode_in(WGS84_LON, WGS84_LAT, lon, lat, step)
}

/// `geohashAlign52Bits`.
pub fn align52(h: Hash) -> u64 {
    h.bits << (52 - u32::from(h.step) * 2)
}

/// The sorted-set score of a point (GEOADD).
pub fn score_of(lon: f64, lat: f64) -> Option<u64> {
    encode(lon, lat, STEP_MAX).map(align52)
}

fn decode_area(h: Hash) -> Option<Area> {
    if h.is_zero() {
        return None;
    }
    let sep = deinterleave64(h.bits);
    let lat_scale = WGS84_LAT.max - WGS84_LAT.min;
    let lon_scale = WGS84_LON.max - WGS84_LON.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << h.step) as f64;
    Some(Area {
        lat: Range {
            min: WGS84_LAT.min + (f64::from(ilato) * 1.0 / div) * lat_scale,
            max: WGS84_LAT.min + ((f64::from(ilato) + 1.0) * 1.0 / div) * lat_scale,
        },
        lon: Range {
            min: WGS84_LON.min + (f64::from(ilono) * 1.0 / div) * lon_scale,
            max: WGS84_LON.min + ((f64::from(ilono) + 1.0) * 1.0 / div) * lon_scale,
        },
    })
}

/// C's `(uint64_t)d` as x86-64 compilers emit it (out of range is undefined in C, so this is what
/// redis-server does for a score no GEOADD wrote: `cvttsd2si`, with 2^63 subtracted first for
/// large values; infinities and NaN become 0, negative values wrap).
fn c_double_to_u64(d: f64) -> u64 {
    const TWO63: f64 = 9223372036854775808.0;
    let cvtt = |y: f64| if y.is_nan() || !(-TWO63..TWO63).contains(&y) { i64::MIN } else { y as i64 };
    if d < TWO63 { cvtt(d) as u64 } else { (cvtt(d - TWO63) as u64) ^ (1 << 63) }
}

/// The point a score stands for (`decodeGeohash`): (longitude, latitude).
pub fn decode_score(score: f64) -> Option<(f64, f64)> {
    let area = decode_area(Hash { bits: c_double_to_u64(score), step: STEP_MAX })?;
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some((lon, lat))
}

/// The 11-character standard geohash of a score (GEOHASH): re-encoded in [-90, 90] latitudes.
pub fn geohash_string(score: f64) -> Option<String> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score)?;
    let h = encode_in(WGS84_LON, Range { min: -90.0, max: 90.0 }, lon, lat, 26).unwrap_or_default();
    Some(
        (0..11)
            .map(|i| {
                let idx = if i == 10 { 0 } else { (h.bits >> (52 - (i + 1) * 5)) & 0x1f };
                char::from(ALPHABET[idx as usize])
            })
            .collect(),
    )
}

fn deg_rad(a: f64) -> f64 {
    a * D_R
}
fn rad_deg(a: f64) -> f64 {
    a / D_R
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in meters (`geohashGetDistance`).
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (deg_rad(lon1), deg_rad(lon2));
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

fn move_x(h: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = h.bits & 0xaaaaaaaaaaaaaaaa;
    let y = h.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> (64 - u32::from(h.step) * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaau64 >> (64 - u32::from(h.step) * 2);
    h.bits = x | y;
}

fn move_y(h: &mut Hash, d: i8) {
    if d == 0 {
        return;
    }
    let x = h.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = h.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> (64 - u32::from(h.step) * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555u64 >> (64 - u32::from(h.step) * 2);
    h.bits = x | y;
}

/// The 9 cells, in Redis's order: self, N, S, E, W, NE, NW, SE, SW.
fn neighbors(h: Hash) -> [Hash; 9] {
    let mv = |dx: i8, dy: i8| {
        let mut n = h;
        move_x(&mut n, dx);
        move_y(&mut n, dy);
        n
    };
    [h, mv(0, 1), mv(0, -1), mv(1, 0), mv(-1, 0), mv(1, 1), mv(-1, 1), mv(1, -1), mv(-1, -1)]
}

/// What a search covers around its center.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// BYRADIUS: radius in the unit.
    Radius(f64),
    /// BYBOX: width and height in the unit.
    Box(f64, f64),
}

/// A search: center (longitude, latitude), shape, and the unit's size in meters.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    pub lon: f64,
    pub lat: f64,
    pub shape: Shape,
    pub conversion: f64,
}

/// `geohashEstimateStepsByRadius`.
fn steps_by_radius(mut range: f64, lat: f64) -> u8 {
    if range == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

impl Search {
    /// `geohashBoundingBox`: [min_lon, min_lat, max_lon, max_lat].
    fn bounds(&self) -> [f64; 4] {
        let (h, w) = match self.shape {
            Shape::Radius(r) => (self.conversion * r, self.conversion * r),
            Shape::Box(w, h) => (self.conversion * (h / 2.0), self.conversion * (w / 2.0)),
        };
        let lat_delta = rad_deg(h / EARTH_RADIUS_IN_METERS);
        let top = rad_deg(w / EARTH_RADIUS_IN_METERS / deg_rad(self.lat + lat_delta).cos());
        let bottom = rad_deg(w / EARTH_RADIUS_IN_METERS / deg_rad(self.lat - lat_delta).cos());
        let d = if self.lat < 0.0 { bottom } else { top };
        [self.lon - d, self.lat - lat_delta, self.lon + d, self.lat + lat_delta]
    }

    /// `geohashCalculateAreasByShapeWGS84`: the cells to walk (zero ones skipped).
    fn cells(&self) -> [Hash; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let radius = match self.shape {
            Shape::Radius(r) => r,
            Shape::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        } * self.conversion;
        let mut steps = steps_by_radius(radius, self.lat);
        let mut hash = encode(self.lon, self.lat, steps).unwrap_or_default();
        let mut n = neighbors(hash);
        let mut area = decode_area(hash).unwrap_or_default();
        let decode = |h: Hash| decode_area(h).unwrap_or_default();
        let (north, south, east, west) = (decode(n[1]), decode(n[2]), decode(n[3]), decode(n[4]));
        let decrease =
            north.lat.max < max_lat || south.lat.min > min_lat || east.lon.max < max_lon || west.lon.min > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            hash = encode(self.lon, self.lat, steps).unwrap_or_default();
            n = neighbors(hash);
            area = decode_area(hash).unwrap_or_default();
        }
        if steps >= 2 {
            let zero = |n: &mut [Hash; 9], idx: [usize; 3]| idx.iter().for_each(|&i| n[i] = Hash::default());
            if area.lat.min < min_lat {
                zero(&mut n, [2, 8, 7]);
            }
            if area.lat.max > max_lat {
                zero(&mut n, [1, 5, 6]);
            }
            if area.lon.min < min_lon {
                zero(&mut n, [4, 8, 6]);
            }
            if area.lon.max > max_lon {
                zero(&mut n, [3, 7, 5]);
            }
        }
        n
    }

    /// Whether a point is inside, and its distance from the center in meters (`geoWithinShape`).
    fn within(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.shape {
            Shape::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= r * self.conversion).then_some(d)
            }
            Shape::Box(w, h) => {
                let (w, h) = (w * self.conversion, h * self.conversion);
                if lat_distance(self.lat, lat) > h / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > w / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }
}

/// A member found by a search.
#[derive(Debug, Clone)]
pub struct Found {
    pub member: Bytes,
    /// Meters from the center.
    pub dist: f64,
    pub score: f64,
    pub lon: f64,
    pub lat: f64,
}

/// The members of `set` inside the search, in Redis's order (cell by cell, each by score),
/// stopping once `limit` are found (0: no limit; COUNT ... ANY).
pub fn search(set: &SortedSet, s: &Search, limit: usize) -> Vec<Found> {
    let cells = s.cells();
    let mut out = Vec::new();
    let mut last: Option<Hash> = None;
    for cell in cells {
        if cell.is_zero() {
            continue;
        }
        // Huge radii: neighbouring cells can be the same one; skip a repeat of the last walked.
        if last == Some(cell) {
            continue;
        }
        if limit > 0 && out.len() >= limit {
            break;
        }
        let min = align52(cell) as f64;
        let max = align52(Hash { bits: cell.bits + 1, step: cell.step }) as f64;
        let range = ScoreRange { min, min_exclusive: false, max, max_exclusive: true };
        for (member, score) in set.range_by_score(&range, false, Limit::NONE) {
            if let Some((lon, lat)) = decode_score(score)
                && let Some(dist) = s.within(lon, lat)
            {
                out.push(Found { member, dist, score, lon, lat });
            }
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
        last = Some(cell);
    }
    out
}

/// Order `v` by distance (descending when `desc`) as Redis does: glibc's `qsort` (a stable merge
/// sort) when every result is returned, else Redis's `pqsort` (Bentley-McIlroy quicksort that
/// only sorts the partitions holding the first `keep` items), whose order of equal distances this
/// reproduces step by step.
pub fn sort_found(v: &mut [Found], desc: bool, keep: usize) {
    let cmp = |a: &Found, b: &Found| -> i32 {
        let c = if a.dist > b.dist {
            1
        } else if a.dist == b.dist {
            0
        } else {
            -1
        };
        if desc { -c } else { c }
    };
    if keep >= v.len() {
        v.sort_by(|a, b| cmp(a, b).cmp(&0));
    } else if keep > 0 {
        pqsort(v, &cmp, 0, v.len(), 0, keep - 1);
    }
}

/// Redis's `_pqsort` over `v[a..a + n]`, keeping to the partitions that meet `[lrange, rrange]`.
fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32, mut a: usize, mut n: usize, lrange: usize, rrange: usize) {
    let c = |v: &[T], i: usize, j: usize| cmp(&v[i], &v[j]);
    let med3 = |v: &[T], x: usize, y: usize, z: usize| {
        if c(v, x, y) < 0 {
            if c(v, y, z) < 0 {
                y
            } else if c(v, x, z) < 0 {
                z
            } else {
                x
            }
        } else if c(v, y, z) > 0 {
            y
        } else if c(v, x, z) < 0 {
            x
        } else {
            z
        }
    };
    let vecswap = |v: &mut [T], x: usize, y: usize, k: usize| {
        for i in 0..k {
            v.swap(x + i, y + i);
        }
    };
    loop {
        if n < 7 {
            for pm in a + 1..a + n {
                let mut pl = pm;
                while pl > a && c(v, pl - 1, pl) > 0 {
                    v.swap(pl, pl - 1);
                    pl -= 1;
                }
            }
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let (mut pl, mut pn) = (a, a + n - 1);
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d);
                pm = med3(v, pm - d, pm, pm + d);
                pn = med3(v, pn - 2 * d, pn - d, pn);
            }
            pm = med3(v, pl, pm, pn);
        }
        v.swap(a, pm);
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let r = c(v, pb, a);
                if r > 0 {
                    break;
                }
                if r == 0 {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let r = c(v, pc, a);
                if r < 0 {
                    break;
                }
                if r == 0 {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let r = pb - pa;
        if r > 1 && !(rrange < a || lrange >= a + r) {
            pqsort(v, cmp, a, r, lrange, rrange);
        }
        let r = pd - pc;
        if r > 1 {
            a = pn - r;
            n = r;
            if !(rrange < a || lrange >= a + r) {
                continue;
            }
        }
        return;
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn scores_hashes_and_distances_match_redis() {
        // Recorded from redis-server 7.0.15: GEOADD Sicily 13.361389 38.115556 Palermo
        // 15.087269 37.502669 Catania, then ZSCORE, GEOPOS, GEOHASH, GEODIST.
        assert_eq!(score_of(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(score_of(15.087269, 37.502669), Some(3479447370796909));
        let (lon, lat) = decode_score(3479099956230698.0).unwrap();
        assert_eq!(crate::longdouble::LongDouble::from_f64(lon).to_human_string(), "13.36138933897018433");
        assert_eq!(crate::longdouble::LongDouble::from_f64(lat).to_human_string(), "38.11555639549629859");
        assert_eq!(geohash_string(3479099956230698.0).as_deref(), Some("sqc8b49rny0"));
        let (lon2, lat2) = decode_score(3479447370796909.0).unwrap();
        assert_eq!(format!("{:.4}", distance(lon, lat, lon2, lat2)), "166274.1516");
        assert_eq!(score_of(181.0, 0.0), None);
    }
}
