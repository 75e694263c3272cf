//! PURE: MySQL's stored geometry — a 4-byte little-endian SRID, then WKB — read, and
//! written in the forms PostgreSQL takes: its own `point`, `lseg`, `path`, `polygon` and
//! `box` (text forms, coordinates as the shortest decimals that read back as the same
//! doubles), and PostGIS's EWKB (the WKB with the SRID folded in). The export records
//! which kinds each column holds ([`kind`]) so that the import can refuse, before any
//! write, a value its target cannot represent.

/// A point's coordinates.
pub type Xy = (f64, f64);

/// What a geometry value is, as far as a target type cares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Point,
    /// A linestring of exactly two points (an `lseg`).
    Segment,
    LineString,
    /// A one-ring polygon whose ring is an axis-aligned rectangle (a `box`).
    Rectangle,
    Polygon,
    PolygonWithHoles,
    MultiPoint,
    MultiLineString,
    MultiPolygon,
    Collection,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Point,
        Kind::Segment,
        Kind::LineString,
        Kind::Rectangle,
        Kind::Polygon,
        Kind::PolygonWithHoles,
        Kind::MultiPoint,
        Kind::MultiLineString,
        Kind::MultiPolygon,
        Kind::Collection,
    ];

    /// The kind a name (as the manifest records it) stands for.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Kind::Point => "point",
            Kind::Segment => "two-point linestring",
            Kind::LineString => "linestring",
            Kind::Rectangle => "rectangle polygon",
            Kind::Polygon => "polygon",
            Kind::PolygonWithHoles => "polygon with holes",
            Kind::MultiPoint => "multipoint",
            Kind::MultiLineString => "multilinestring",
            Kind::MultiPolygon => "multipolygon",
            Kind::Collection => "geometrycollection",
        }
    }
}

/// A parsed value: its SRID and its shape (the simple kinds; others kept as a kind).
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub srid: u32,
    pub shape: Shape,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Point(Xy),
    LineString(Vec<Xy>),
    Polygon(Vec<Vec<Xy>>),
    /// Multi* and collections: only their kind is needed (EWKB keeps their bytes).
    Other(Kind),
}

impl Geometry {
    pub fn kind(&self) -> Kind {
        match &self.shape {
            Shape::Point(_) => Kind::Point,
            Shape::LineString(p) if p.len() == 2 => Kind::Segment,
            Shape::LineString(_) => Kind::LineString,
            Shape::Polygon(rings) if rings.len() > 1 => Kind::PolygonWithHoles,
            Shape::Polygon(rings) if rings.first().is_some_and(|r| rectangle(r).is_some()) => {
                Kind::Rectangle
            }
            Shape::Polygon(_) => Kind::Polygon,
            Shape::Other(k) => k.clone(),
        }
    }
}

/// Read MySQL's stored bytes.
pub fn parse(bytes: &[u8]) -> Result<Geometry, &'static str> {
    let srid = u32::from_le_bytes(
        bytes
            .get(..4)
            .ok_or("shorter than an SRID")?
            .try_into()
            .map_err(|_| "shorter than an SRID")?,
    );
    let mut r = Reader {
        data: &bytes[4..],
        pos: 0,
        little: true,
    };
    let ty = r.header()?;
    let shape = match ty {
        1 => Shape::Point(r.xy()?),
        2 => Shape::LineString(r.points()?),
        3 => {
            let n = r.u32()?;
            let mut rings = Vec::new();
            for _ in 0..n {
                rings.push(r.points()?);
            }
            Shape::Polygon(rings)
        }
        4 => Shape::Other(Kind::MultiPoint),
        5 => Shape::Other(Kind::MultiLineString),
        6 => Shape::Other(Kind::MultiPolygon),
        7 => Shape::Other(Kind::Collection),
        _ => return Err("an unknown WKB geometry type"),
    };
    if matches!(ty, 1..=3) && r.pos != r.data.len() {
        return Err("bytes after the geometry");
    }
    Ok(Geometry { srid, shape })
}

/// The kind of a stored value (for the export's facts).
pub fn kind(bytes: &[u8]) -> Result<Kind, &'static str> {
    parse(bytes).map(|g| g.kind())
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    little: bool,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let b: [u8; N] = self
            .data
            .get(self.pos..self.pos + N)
            .ok_or("truncated WKB")?
            .try_into()
            .map_err(|_| "truncated WKB")?;
        self.pos += N;
        Ok(b)
    }

    /// Byte order and type of a (sub)geometry.
    fn header(&mut self) -> Result<u32, &'static str> {
        self.little = match self.take::<1>()?[0] {
            0 => false,
            1 => true,
            _ => return Err("a WKB byte order other than 0 or 1"),
        };
        self.u32()
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take::<4>()?;
        Ok(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn f64(&mut self) -> Result<f64, &'static str> {
        let b = self.take::<8>()?;
        Ok(if self.little {
            f64::from_le_bytes(b)
        } else {
            f64::from_be_bytes(b)
        })
    }

    fn xy(&mut self) -> Result<Xy, &'static str> {
        Ok((self.f64()?, self.f64()?))
    }

    fn points(&mut self) -> Result<Vec<Xy>, &'static str> {
        let n = self.u32()? as usize;
        if n > self.data.len() / 16 + 1 {
            return Err("more points than bytes");
        }
        (0..n).map(|_| self.xy()).collect()
    }
}

/// A closed ring of five points that runs around an axis-aligned rectangle: its high
/// and low corners.
fn rectangle(ring: &[Xy]) -> Option<(Xy, Xy)> {
    if ring.len() != 5 || ring[0] != ring[4] {
        return None;
    }
    let xs: Vec<f64> = ring[..4].iter().map(|p| p.0).collect();
    let ys: Vec<f64> = ring[..4].iter().map(|p| p.1).collect();
    let (x0, x1) = (
        xs.iter().cloned().fold(f64::INFINITY, f64::min),
        xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let (y0, y1) = (
        ys.iter().cloned().fold(f64::INFINITY, f64::min),
        ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    // Each edge is horizontal or vertical, and the corners are the four distinct ones.
    let edges_axis = ring
        .windows(2)
        .all(|w| w[0].0 == w[1].0 || w[0].1 == w[1].1);
    let corners = ring[..4]
        .iter()
        .all(|p| (p.0 == x0 || p.0 == x1) && (p.1 == y0 || p.1 == y1));
    (edges_axis && corners && x0 < x1 && y0 < y1).then_some(((x1, y1), (x0, y0)))
}

/// A PostgreSQL geometric type a value can be written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Point,
    Lseg,
    Path,
    Polygon,
    Box,
    /// PostGIS `geometry`/`geography`: EWKB, as hex.
    Ewkb,
}

impl Form {
    pub fn name(self) -> &'static str {
        match self {
            Form::Point => "point",
            Form::Lseg => "lseg",
            Form::Path => "path",
            Form::Polygon => "polygon",
            Form::Box => "box",
            Form::Ewkb => "PostGIS EWKB",
        }
    }

    /// The form for a target type name, if it is a geometric one.
    pub fn for_type(type_name: &str) -> Option<Form> {
        Some(match type_name {
            "point" => Form::Point,
            "lseg" => Form::Lseg,
            "path" => Form::Path,
            "polygon" => Form::Polygon,
            "box" => Form::Box,
            "geometry" | "geography" => Form::Ewkb,
            _ => return None,
        })
    }

    /// Can a value of this kind be written in this form, exactly?
    pub fn takes(self, kind: &Kind) -> bool {
        match self {
            Form::Point => *kind == Kind::Point,
            Form::Lseg => *kind == Kind::Segment,
            Form::Path => matches!(kind, Kind::Segment | Kind::LineString),
            Form::Polygon => matches!(kind, Kind::Polygon | Kind::Rectangle),
            Form::Box => *kind == Kind::Rectangle,
            Form::Ewkb => true,
        }
    }
}

/// What a PostGIS column's declared type admits (`geometry(Point,4326)`,
/// `geography(Polygon,4326)`, `geometry(LineStringZ)`): PostGIS refuses any other value
/// at COPY time, so the import compares the export's kinds and SRIDs with it first.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgisType {
    /// Lower-case subtype (`point`, `multipolygon`, `geometry` for any), None: any.
    pub subtype: Option<String>,
    /// The declared SRID; 0 when none is declared.
    pub srid: u32,
    pub geography: bool,
    /// A Z or M dimension: MySQL's values are two-dimensional and never fit it.
    pub extra_dimensions: bool,
}

impl PostgisType {
    /// From `format_type`'s text; None when it is not PostGIS's geometry or geography.
    pub fn parse(type_sql: &str) -> Option<PostgisType> {
        let t = type_sql.trim();
        let (base, rest) = match t.find('(') {
            Some(i) => (&t[..i], Some(t[i + 1..].strip_suffix(')')?)),
            None => (t, None),
        };
        let base = base.rsplit('.').next()?.trim_matches('"');
        let geography = match base {
            "geometry" => false,
            "geography" => true,
            _ => return None,
        };
        let mut out = PostgisType {
            subtype: None,
            srid: 0,
            geography,
            extra_dimensions: false,
        };
        if let Some(rest) = rest {
            let mut parts = rest.split(',').map(str::trim);
            let mut sub = parts.next().unwrap_or("").to_ascii_lowercase();
            for suffix in ["zm", "z", "m"] {
                // `geometry(Geometry)` has no suffix; `pointm`, `linestringzm` ... have.
                if sub.len() > suffix.len()
                    && sub.ends_with(suffix)
                    && !matches!(sub.as_str(), "geometry" | "geom")
                {
                    sub.truncate(sub.len() - suffix.len());
                    out.extra_dimensions = true;
                    break;
                }
            }
            out.subtype = Some(sub).filter(|s| s != "geometry");
            out.srid = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        }
        Some(out)
    }

    /// Does a value of this kind fit the declared subtype?
    pub fn takes(&self, kind: &Kind) -> bool {
        let Some(sub) = &self.subtype else {
            return !self.extra_dimensions;
        };
        let name = match kind {
            Kind::Point => "point",
            Kind::Segment | Kind::LineString => "linestring",
            Kind::Rectangle | Kind::Polygon | Kind::PolygonWithHoles => "polygon",
            Kind::MultiPoint => "multipoint",
            Kind::MultiLineString => "multilinestring",
            Kind::MultiPolygon => "multipolygon",
            Kind::Collection => "geometrycollection",
        };
        !self.extra_dimensions && sub == name
    }

    /// Does a value with this SRID fit the declared one? A geography reads SRID 0 as
    /// 4326 (its default); a geometry must match exactly once an SRID is declared.
    pub fn takes_srid(&self, srid: u32) -> bool {
        let srid = if self.geography && srid == 0 {
            4326
        } else {
            srid
        };
        self.srid == 0 || self.srid == srid
    }
}

/// The text PostgreSQL reads for `bytes` in `form`; None when the value cannot be
/// written so (the import refused such columns from the export's facts beforehand).
pub fn to_text(bytes: &[u8], form: Form) -> Option<Vec<u8>> {
    if form == Form::Ewkb {
        return ewkb(bytes).map(|b| super::rules::hex(&b));
    }
    let g = parse(bytes).ok()?;
    let p = |(x, y): Xy| format!("({x:?},{y:?})");
    let list = |pts: &[Xy]| pts.iter().map(|&q| p(q)).collect::<Vec<_>>().join(",");
    let text = match (form, &g.shape) {
        (Form::Point, Shape::Point(q)) => p(*q),
        (Form::Lseg, Shape::LineString(pts)) if pts.len() == 2 => format!("[{}]", list(pts)),
        (Form::Path, Shape::LineString(pts)) => format!("[{}]", list(pts)),
        (Form::Polygon, Shape::Polygon(rings)) if rings.len() == 1 => {
            format!("({})", list(&rings[0]))
        }
        (Form::Box, Shape::Polygon(rings)) if rings.len() == 1 => {
            let (hi, lo) = rectangle(&rings[0])?;
            format!("{},{}", p(hi), p(lo))
        }
        _ => return None,
    };
    Some(text.into_bytes())
}

/// PostGIS EWKB: MySQL's WKB with the SRID flag and the SRID after the type, in the
/// WKB's own byte order (no SRID flag for SRID 0).
pub fn ewkb(bytes: &[u8]) -> Option<Vec<u8>> {
    let srid: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let srid = u32::from_le_bytes(srid);
    let wkb = bytes.get(4..)?;
    let little = match *wkb.first()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let ty: [u8; 4] = wkb.get(1..5)?.try_into().ok()?;
    let ty = if little {
        u32::from_le_bytes(ty)
    } else {
        u32::from_be_bytes(ty)
    };
    if srid == 0 {
        return Some(wkb.to_vec());
    }
    let word = |n: u32| {
        if little {
            n.to_le_bytes()
        } else {
            n.to_be_bytes()
        }
    };
    let mut out = Vec::with_capacity(wkb.len() + 4);
    out.push(wkb[0]);
    out.extend_from_slice(&word(ty | 0x2000_0000));
    out.extend_from_slice(&word(srid));
    out.extend_from_slice(&wkb[5..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MySQL's bytes for a WKB body with an SRID.
    fn stored(srid: u32, wkb: &[u8]) -> Vec<u8> {
        [srid.to_le_bytes().to_vec(), wkb.to_vec()].concat()
    }

    fn le_points(ty: u32, pts: &[Xy]) -> Vec<u8> {
        let mut b = vec![1];
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&(pts.len() as u32).to_le_bytes());
        for (x, y) in pts {
            b.extend_from_slice(&x.to_le_bytes());
            b.extend_from_slice(&y.to_le_bytes());
        }
        b
    }

    fn polygon(rings: &[&[Xy]]) -> Vec<u8> {
        let mut b = vec![1];
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&(rings.len() as u32).to_le_bytes());
        for r in rings {
            b.extend_from_slice(&le_points(2, r)[5..]);
        }
        b
    }

    #[test]
    fn kinds_and_text_forms() {
        // The point of pgloader's fixture: SRID 0, POINT(1 1), as MySQL stores it.
        let point = hex::decode("000000000101000000000000000000f03f000000000000f03f").unwrap();
        assert_eq!(kind(&point), Ok(Kind::Point));
        assert_eq!(to_text(&point, Form::Point).unwrap(), b"(1.0,1.0)");
        assert_eq!(to_text(&point, Form::Lseg), None);
        // Big-endian WKB reads the same.
        let be = hex::decode("00000000000000000140000000000000003ff8000000000000").unwrap();
        assert_eq!(to_text(&be, Form::Point).unwrap(), b"(2.0,1.5)");
        let seg = stored(0, &le_points(2, &[(0.0, 0.0), (1.5, -2.0)]));
        assert_eq!(kind(&seg), Ok(Kind::Segment));
        assert_eq!(
            to_text(&seg, Form::Lseg).unwrap(),
            b"[(0.0,0.0),(1.5,-2.0)]"
        );
        assert_eq!(
            to_text(&seg, Form::Path).unwrap(),
            b"[(0.0,0.0),(1.5,-2.0)]"
        );
        let line = stored(0, &le_points(2, &[(0.0, 0.0), (1.0, 1.0), (0.1, 1e300)]));
        assert_eq!(kind(&line), Ok(Kind::LineString));
        assert_eq!(
            to_text(&line, Form::Path).unwrap(),
            b"[(0.0,0.0),(1.0,1.0),(0.1,1e300)]"
        );
        let rect: &[Xy] = &[(0.0, 0.0), (2.0, 0.0), (2.0, 1.0), (0.0, 1.0), (0.0, 0.0)];
        let r = stored(0, &polygon(&[rect]));
        assert_eq!(kind(&r), Ok(Kind::Rectangle));
        assert_eq!(to_text(&r, Form::Box).unwrap(), b"(2.0,1.0),(0.0,0.0)");
        assert_eq!(
            to_text(&r, Form::Polygon).unwrap(),
            b"((0.0,0.0),(2.0,0.0),(2.0,1.0),(0.0,1.0),(0.0,0.0))"
        );
        let tri: &[Xy] = &[(0.0, 0.0), (2.0, 0.0), (1.0, 1.0), (0.0, 0.0)];
        assert_eq!(kind(&stored(0, &polygon(&[tri]))), Ok(Kind::Polygon));
        assert_eq!(to_text(&stored(0, &polygon(&[tri])), Form::Box), None);
        let holed = stored(0, &polygon(&[rect, tri]));
        assert_eq!(kind(&holed), Ok(Kind::PolygonWithHoles));
        assert_eq!(to_text(&holed, Form::Polygon), None);
        for bad in [
            &b""[..],
            b"\0\0\0\0",
            b"\0\0\0\0\x02\x01\0\0\0",
            b"\0\0\0\0\x01\x09\0\0\0",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ewkb_folds_the_srid_in() {
        let point = hex::decode("e61000000101000000000000000000f03f000000000000f03f").unwrap();
        assert_eq!(
            hex::encode(ewkb(&point).unwrap()),
            "0101000020e6100000000000000000f03f000000000000f03f"
        );
        let zero = hex::decode("000000000101000000000000000000f03f000000000000f03f").unwrap();
        assert_eq!(
            hex::encode(ewkb(&zero).unwrap()),
            "0101000000000000000000f03f000000000000f03f"
        );
        assert!(Form::Ewkb.takes(&Kind::Collection));
        assert!(!Form::Box.takes(&Kind::Polygon));
    }

    #[test]
    fn postgis_declared_types_admit_their_kinds_and_srids() {
        let t = |s: &str| PostgisType::parse(s).unwrap();
        assert_eq!(PostgisType::parse("point"), None);
        assert_eq!(PostgisType::parse("text"), None);
        let any = t("geometry");
        assert!(Kind::ALL.iter().all(|k| any.takes(k)) && any.takes_srid(3857));
        let p = t("geometry(Point,4326)");
        assert!(p.takes(&Kind::Point) && !p.takes(&Kind::MultiPoint));
        assert!(p.takes_srid(4326) && !p.takes_srid(0) && !p.takes_srid(3857));
        let line = t("public.geometry(LineString)");
        assert!(line.takes(&Kind::Segment) && line.takes(&Kind::LineString));
        assert!(line.takes_srid(0) && line.takes_srid(4326));
        let poly = t("geography(Polygon,4326)");
        assert!(poly.takes(&Kind::PolygonWithHoles) && poly.takes(&Kind::Rectangle));
        assert!(poly.takes_srid(0) && poly.takes_srid(4326) && !poly.takes_srid(3857));
        assert!(t("geometry(Geometry,3857)").takes(&Kind::Collection));
        assert!(!t("geometry(Geometry,3857)").takes_srid(4326));
        assert!(t("geometry(GeometryCollection)").takes(&Kind::Collection));
        for dims in [
            "geometry(PointZ)",
            "geometry(PointM,4326)",
            "geometry(MultiPolygonZM,4326)",
        ] {
            let d = t(dims);
            assert!(d.extra_dimensions, "{dims}");
            assert!(Kind::ALL.iter().all(|k| !d.takes(k)), "{dims}");
        }
    }
}
