#!/usr/bin/env python3
"""Writes src/raster/epsg_units.rs from PROJ's database (proj.db, what GDAL reads CRS codes with): the linear
units of EPSG, the projected CRSs whose axes are not in metres, the vertical CRSs whose unit is not the metre or
whose axis points down, and the projections (as PROJ strings) of the projected CRSs terrafarm places on the
ellipsoid: those whose datum lies within a few metres of WGS 84. A GeoTIFF names its
CRS by code; GDAL leaves ProjLinearUnitsGeoKey out when the CRS is compound (horizontal + vertical), so the unit must
come from the code.

    python3 .ci/epsg_units.py [--check] [--db PATH]

--check compares the committed file with what the database gives and exits 1 on any difference (CI runs it).
"""
import argparse
import math
import pathlib
import re
import sqlite3
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "src" / "raster" / "epsg_units.rs"


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("'", "")).strip("-")


def axis_units(db, table, extra=""):
    q = f"""select distinct cast(c.code as integer), cast(u.code as integer), a.orientation, c.name
            from {table} c
            join axis a on a.coordinate_system_auth_name = c.coordinate_system_auth_name
                       and a.coordinate_system_code = c.coordinate_system_code
            join unit_of_measure u on u.auth_name = a.uom_auth_name and u.code = a.uom_code
            where c.auth_name = 'EPSG' and u.auth_name = 'EPSG' {extra}
            order by 1"""
    return db.execute(q).fetchall()


def conv(db, unit):
    return db.execute("select conv_factor from unit_of_measure where auth_name = 'EPSG' and code = ?", (str(unit),)).fetchone()[0]


def near_wgs84(db, metres=3.0):
    """Codes of the geodetic datums within `metres` of WGS 84: WGS 84 itself, and every datum with a Helmert
    transformation to WGS 84 (EPSG:4326) whose largest displacement at the earth's surface (translation, rotation
    and scale at the equatorial radius) is at most that."""
    near = {"6326"}
    rows = db.execute(
        """select g.datum_code, h.tx, h.ty, h.tz, h.translation_uom_code, h.rx, h.ry, h.rz, h.rotation_uom_code,
                  h.scale_difference, h.scale_difference_uom_code
           from helmert_transformation_table h
           join geodetic_crs g on g.auth_name = h.source_crs_auth_name and g.code = h.source_crs_code
           where h.auth_name = 'EPSG' and h.deprecated = 0 and h.source_crs_auth_name = 'EPSG'
             and h.target_crs_auth_name = 'EPSG' and h.target_crs_code = '4326'"""
    ).fetchall()
    for datum, tx, ty, tz, tu, rx, ry, rz, ru, ds, du in rows:
        rot = math.sqrt(rx * rx + ry * ry + rz * rz) * conv(db, ru) if rx is not None else 0.0
        scale = abs(ds) * conv(db, du) if ds else 0.0
        if math.sqrt(tx * tx + ty * ty + tz * tz) * conv(db, tu) + 6378137.0 * (rot + scale) <= metres:
            near.add(str(datum))
    return near


# EPSG methods placed through proj4rs: method code → (PROJ name, [(PROJ parameter, EPSG parameter code)]).
METHODS = {
    9807: ("tmerc", [("lat_0", 8801), ("lon_0", 8802), ("k_0", 8805), ("x_0", 8806), ("y_0", 8807)]),
    9801: ("lcc", [("lat_1", 8801), ("lat_0", 8801), ("lon_0", 8802), ("k_0", 8805), ("x_0", 8806), ("y_0", 8807)]),
    9802: ("lcc", [("lat_0", 8821), ("lon_0", 8822), ("lat_1", 8823), ("lat_2", 8824), ("x_0", 8826), ("y_0", 8827)]),
    9822: ("aea", [("lat_0", 8821), ("lon_0", 8822), ("lat_1", 8823), ("lat_2", 8824), ("x_0", 8826), ("y_0", 8827)]),
    9820: ("laea", [("lat_0", 8801), ("lon_0", 8802), ("x_0", 8806), ("y_0", 8807)]),
    9810: ("stere", [("lat_0", 8801), ("lon_0", 8802), ("k_0", 8805), ("x_0", 8806), ("y_0", 8807)]),
    9829: ("stere", [("lat_ts", 8832), ("lon_0", 8833), ("x_0", 8806), ("y_0", 8807)]),
    9804: ("merc", [("lon_0", 8802), ("k_0", 8805), ("x_0", 8806), ("y_0", 8807)]),
    9805: ("merc", [("lat_ts", 8823), ("lon_0", 8802), ("x_0", 8806), ("y_0", 8807)]),
    9809: ("sterea", [("lat_0", 8801), ("lon_0", 8802), ("k_0", 8805), ("x_0", 8806), ("y_0", 8807)]),
}


def dms(v):
    """EPSG's sexagesimal DMS (unit 9110: sDDD.MMSSsss) → degrees, read from its decimal digits."""
    sign = -1 if v < 0 else 1
    t = f"{abs(v):.10f}"
    d, frac = t.split(".")
    return sign * (int(d) + int(frac[:2]) / 60 + float(frac[2:4] + "." + frac[4:]) / 3600)


def value(db, v, uom):
    """A conversion parameter in PROJ's units: degrees for angles, metres for lengths, unity for scales."""
    if uom == "9110":
        return dms(v)
    if uom in ("9102", "9122"):
        return v
    if uom == "9105":
        return v * 0.9
    kind, factor = db.execute("select type, conv_factor from unit_of_measure where auth_name = 'EPSG' and code = ?", (uom,)).fetchone()
    return v * factor / (math.pi / 180) if kind == "angle" else v * factor


def projections(db):
    """EPSG projected CRSs placed through a PROJ string (read by proj4rs): a method of METHODS, the WGS 84 or GRS 1980
    ellipsoid, the Greenwich meridian, a datum within 3 m of WGS 84, and axes that are easting and northing in
    either order (or a polar stereographic grid's x and y): (code, PROJ string), sorted by code."""
    near = near_wgs84(db)
    q = """select cast(p.code as integer), c.*, cast(d.code as text), d.ellipsoid_code, p.coordinate_system_code
           from projected_crs p
           join conversion_table c on c.auth_name = p.conversion_auth_name and c.code = p.conversion_code
           join geodetic_crs g on g.auth_name = p.geodetic_crs_auth_name and g.code = p.geodetic_crs_code
           join geodetic_datum d on d.auth_name = g.datum_auth_name and d.code = g.datum_code
           where p.auth_name = 'EPSG' and p.deprecated = 0 and p.coordinate_system_auth_name = 'EPSG'
             and d.ellipsoid_code in (7030, 7019) and d.prime_meridian_code = 8901
           order by 1"""
    out = []
    for row in db.execute(q).fetchall():
        code, conv, datum, ellps, cs = row[0], row[1:-3], row[-3], str(row[-2]), str(row[-1])
        method = int(conv[5])
        if datum not in near or method not in METHODS or code > 65535:
            continue
        orient = [o for (o,) in db.execute(
            "select orientation from axis where coordinate_system_auth_name = 'EPSG' and coordinate_system_code = ?", (cs,))]
        polar = method in (9810, 9829)
        if sorted(orient) != ["east", "north"] and not (polar and len(orient) == 2 and all(o.startswith(("North along", "South along")) for o in orient)):
            continue
        params = {}
        for i in range(7):
            b = 6 + 5 * i
            if conv[b + 1] is not None:
                params[int(conv[b + 1])] = value(db, conv[b + 2], str(conv[b + 4]))
        name, keys = METHODS[method]
        parts = [f"+proj={name}"]
        if method == 9829:
            parts.append(f"+lat_0={90 if params[8832] > 0 else -90}")
        for key, p in keys:
            parts.append(f"+{key}={params[p]!r}".removesuffix(".0"))
        parts.append(f"+ellps={'WGS84' if ellps == '7030' else 'GRS80'}")
        out.append((code, " ".join(parts)))
    return out


def geographic(db):
    """EPSG geographic 2D CRSs on the WGS 84 or GRS 1980 ellipsoid, the Greenwich meridian and a datum within 3 m
    of WGS 84 (what a user-defined projected CRS in a GeoTIFF may be based on), and those datums: (CRS codes, datum
    codes)."""
    near = near_wgs84(db)
    q = """select cast(g.code as integer), cast(d.code as text)
           from geodetic_crs g
           join geodetic_datum d on d.auth_name = g.datum_auth_name and d.code = g.datum_code
           where g.auth_name = 'EPSG' and g.deprecated = 0 and g.type = 'geographic 2D'
             and d.ellipsoid_code in (7030, 7019) and d.prime_meridian_code = 8901
           order by 1"""
    rows = [(c, d) for c, d in db.execute(q).fetchall() if d in near and c <= 65535]
    return [c for c, _ in rows], sorted(int(d) for d in near)


def u16_table(out, name, values, doc):
    """Closes the table before and appends `pub const NAME: &[u16]` of `values`, 16 a line, with its doc lines."""
    out += ["];", ""] + [f"/// {d}" for d in doc] + ["#[rustfmt::skip]", f"pub const {name}: &[u16] = &["]
    for i in range(0, len(values), 16):
        out.append("    " + " ".join(f"{c}," for c in values[i : i + 16]))


def generate(db_path):
    db = sqlite3.connect(db_path)
    version = db.execute("select value from metadata where key = 'EPSG.VERSION'").fetchone()
    proj = db.execute("select value from metadata where key = 'PROJ.VERSION'").fetchone()
    projected = sorted({(c, u) for c, u, _, _ in axis_units(db, "projected_crs") if u != 9001})
    codes = [c for c, _ in projected]
    assert len(codes) == len(set(codes)), "a projected CRS with axes in two units"
    vertical = [(c, u, o, n) for c, u, o, n in axis_units(db, "vertical_crs") if (u != 9001 or o != "up") and "example" not in n]
    used = sorted({u for _, u in projected} | {u for _, u, _, _ in vertical} | {9001, 9002, 9003, 9036})
    units = []
    for u in used:
        name, factor = db.execute(
            "select name, conv_factor from unit_of_measure where auth_name = 'EPSG' and code = ?", (str(u),)
        ).fetchone()
        units.append((u, slug(name), factor))
    runs = []
    for c, u in projected:
        if runs and runs[-1][2] == u and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c, u])
    out = [
        "//! Generated by `.ci/epsg_units.py` from PROJ's database (proj.db); do not edit. CI checks it against the",
        f"//! proj.db of the GDAL it installs. Source: PROJ {proj[0] if proj else '?'}, EPSG {version[0] if version else '?'}.",
        "",
        "/// EPSG linear units: (code, name, metres per unit).",
        "pub const UNITS: &[(u16, &str, f64)] = &[",
    ]
    out += [f'    ({u}, "{n}", {f!r}),' for u, n, f in units]
    out += [
        "];",
        "",
        "/// Runs of EPSG projected CRS codes whose axes are not in metres: (first code, last code, EPSG unit code).",
        "/// Every other EPSG projected CRS is in metres.",
        "#[rustfmt::skip]",
        "pub const PROJECTED: &[(u16, u16, u16)] = &[",
    ]
    for i in range(0, len(runs), 6):
        out.append("    " + " ".join(f"({a}, {b}, {u})," for a, b, u in runs[i : i + 6]))
    out += [
        "];",
        "",
        "/// EPSG vertical CRSs whose unit is not the metre or whose axis points down (depths): (code, name, EPSG unit",
        "/// code, depth). Every other EPSG vertical CRS is metres up.",
        "pub const VERTICAL: &[(u16, &str, u16, bool)] = &[",
    ]
    out += [f'    ({c}, "{n}", {u}, {"true" if o == "down" else "false"}),' for c, u, o, n in vertical]
    # Placeable CRSs: each distinct PROJ string once, and the codes that use it.
    placed = projections(db)
    strings = sorted({t for _, t in placed})
    index = {t: i for i, t in enumerate(strings)}
    out += [
        "];",
        "",
        "/// PROJ strings (read by proj4rs) of the projections in [`PROJECTIONS`].",
        "pub const PROJ_STRINGS: &[&str] = &[",
    ]
    out += [f'    "{t}",' for t in strings]
    out += [
        "];",
        "",
        "/// EPSG projected CRSs terrafarm places on the ellipsoid (transverse Mercator, as UTM and most national and",
        "/// state grids; Lambert conic conformal; Albers; Lambert azimuthal equal-area; polar and oblique stereographic;",
        "/// Mercator) on the WGS 84 or GRS 1980 ellipsoid and a datum within 3 m of WGS 84 (WGS 84, and ETRS89, NAD83,",
        "/// GDA, SIRGAS, JGD and other datums with a Helmert transformation to WGS 84 of at most 3 m), with easting and",
        "/// northing axes: (code, index into [`PROJ_STRINGS`]), sorted by code.",
        "#[rustfmt::skip]",
        "pub const PROJECTIONS: &[(u16, u16)] = &[",
    ]
    for i in range(0, len(placed), 10):
        out.append("    " + " ".join(f"({c}, {index[t]})," for c, t in placed[i : i + 10]))
    geo, datums = geographic(db)
    u16_table(out, "GEOGRAPHIC", geo, [
        "EPSG geographic 2D CRSs on the WGS 84 or GRS 1980 ellipsoid and a datum within 3 m of WGS 84, sorted: the",
        "base a user-defined projected CRS of a GeoTIFF must have to be placed.",
    ])
    u16_table(out, "DATUMS", datums, ["EPSG geodetic datums within 3 m of WGS 84, sorted (for a GeoTIFF's user-defined geographic CRS)."])
    out += ["];", ""]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--db", default="/usr/share/proj/proj.db")
    a = ap.parse_args()
    text = generate(a.db)
    if a.check:
        # The source line names the database's versions; the tables are what must agree.
        strip = lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("//! proj.db of") and "Source: PROJ" not in l)
        if strip(OUT.read_text()) != strip(text):
            print(f"{OUT.relative_to(ROOT)} differs from {a.db}: run python3 .ci/epsg_units.py", file=sys.stderr)
            return 1
        print(f"{OUT.relative_to(ROOT)} matches {a.db}")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
