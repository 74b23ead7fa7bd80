#!/usr/bin/env python3
"""Writes src/raster/epsg_units.rs from PROJ's database (proj.db, what GDAL reads CRS codes with): the linear
units of EPSG, the projected CRSs whose axes are not in metres, the vertical CRSs whose unit is not the metre or
whose axis points down, and the projections (as PROJ strings) of the projected CRSs terrafarm places on the
ellipsoid: those whose datum lies within a few metres of WGS 84, and those on other datums with the transformations
to WGS 84 PROJ chooses among for each (where no grid is installed), in PROJ's order. A GeoTIFF names its
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
    # Hotine oblique Mercator, variant A (false easting and northing at the natural origin: +no_uoff) and variant B
    # (at the projection centre): the Swiss grids, Malaysia's and Borneo's RSO, Alaska zone 1, Michigan.
    9812: ("omerc", [("lat_0", 8811), ("lonc", 8812), ("alpha", 8813), ("gamma", 8814), ("k_0", 8815), ("x_0", 8806), ("y_0", 8807)]),
    9815: ("omerc", [("lat_0", 8811), ("lonc", 8812), ("alpha", 8813), ("gamma", 8814), ("k_0", 8815), ("x_0", 8816), ("y_0", 8817)]),
    # Krovak, north-orientated (easting and northing, both negative): the Czech and Slovak S-JTSK grids. PROJ and
    # proj4rs fix the cone's axis and the pseudo standard parallel at EPSG's values; the string states them.
    1041: ("krovak", [("lat_0", 8811), ("lon_0", 8833), ("alpha", 1036), ("lat_ts", 8818), ("k_0", 8819), ("x_0", 8806), ("y_0", 8807)]),
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


# PROJ's named prime meridians (its `pj_prime_meridians`, also proj4rs's), as degrees, minutes and seconds east.
PROJ_MERIDIANS = [(-9, 7, 54.862), (2, 20, 14.025), (-74, 4, 51.3), (-3, 41, 16.58), (12, 27, 8.4), (7, 26, 22.5),
                  (106, 48, 27.79), (-17, 40, 0.0), (4, 22, 4.71), (18, 3, 29.8), (23, 42, 58.815), (10, 43, 22.5),
                  (12, 34, 40.35)]


def prime_meridian(db, code):
    """A prime meridian's longitude from Greenwich, in degrees, as PROJ writes it in its PROJ strings: the value of
    its own named meridian where EPSG's is within 1e-10 radians of it (`PrimeMeridian::getPROJStringWellKnownName`:
    Paris in grads is 0.3 mm from PROJ's `paris`), else EPSG's."""
    v, uom = db.execute("select longitude, uom_code from prime_meridian where auth_name = 'EPSG' and code = ?", (str(code),)).fetchone()
    degrees = value(db, v, str(uom))
    for d, m, sec in PROJ_MERIDIANS:
        named = math.copysign(abs(d) + m / 60 + sec / 3600, d)
        if abs(math.radians(degrees) - math.radians(named)) < 1e-10:
            return named
    return degrees


def conversions(db):
    """EPSG projected CRSs whose projection proj4rs can invert: a method of METHODS and axes that are easting and
    northing in either order (or a polar stereographic grid's x and y): (code, PROJ string without the ellipsoid,
    datum code, ellipsoid code, base geographic CRS code, whether the prime meridian is Greenwich), sorted by code.
    A prime meridian other than Greenwich (Paris, Ferro, Rome, ...) is the string's `+pm=` in degrees; the
    projection's longitudes are from it, as EPSG gives them."""
    q = """select cast(p.code as integer), c.*, cast(d.code as text), d.ellipsoid_code, p.coordinate_system_code,
                  cast(g.code as integer), d.prime_meridian_code
           from projected_crs p
           join conversion_table c on c.auth_name = p.conversion_auth_name and c.code = p.conversion_code
           join geodetic_crs g on g.auth_name = p.geodetic_crs_auth_name and g.code = p.geodetic_crs_code
           join geodetic_datum d on d.auth_name = g.datum_auth_name and d.code = g.datum_code
           where p.auth_name = 'EPSG' and p.deprecated = 0 and p.coordinate_system_auth_name = 'EPSG'
             and g.auth_name = 'EPSG'
           order by 1"""
    out = []
    for row in db.execute(q).fetchall():
        code, conv, datum, ellps, cs, base, pm = row[0], row[1:-5], row[-5], str(row[-4]), str(row[-3]), row[-2], str(row[-1])
        method = int(conv[5])
        if method not in METHODS or code > 65535:
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
        if method == 9815 and abs(params[8813] - 90) < 1e-4 and abs(params[8814] - 90) < 1e-4:
            # As PROJ writes it: the Swiss oblique Mercator (Switzerland's and Hungary's grids).
            name, keys = "somerc", [("lat_0", 8811), ("lon_0", 8812), ("k_0", 8815), ("x_0", 8816), ("y_0", 8817)]
        parts = [f"+proj={name}"]
        if method == 9829:
            parts.append(f"+lat_0={90 if params[8832] > 0 else -90}")
        if method == 9812:
            parts.append("+no_uoff")
        for key, p in keys:
            parts.append(f"+{key}={params[p]!r}".removesuffix(".0"))
        if pm != "8901":
            parts.append(f"+pm={prime_meridian(db, pm)!r}")
        out.append((code, " ".join(parts), datum, ellps, base, pm == "8901"))
    return out


def projections(db):
    """EPSG projected CRSs placed through a PROJ string (read by proj4rs) with no datum shift: those of
    [`conversions`] on the WGS 84 or GRS 1980 ellipsoid and a datum within 3 m of WGS 84: (code, PROJ string),
    sorted by code."""
    near = near_wgs84(db)
    return [(code, f"{t} +ellps={'WGS84' if ellps == '7030' else 'GRS80'}")
            for code, t, datum, ellps, _, greenwich in conversions(db) if datum in near and ellps in ("7030", "7019") and greenwich]


def needs_grid(db, code):
    """Whether a concatenated operation has a step that interpolates a grid."""
    steps = db.execute("select step_code from concatenated_operation_step where operation_auth_name = 'EPSG' and operation_code = ?",
                       (str(code),)).fetchall()
    return any(db.execute("select 1 from grid_transformation where auth_name = 'EPSG' and code = ?", (c,)).fetchone() for (c,) in steps)


def area_of_use(db, table, code):
    """An EPSG object's (first) area of use, as PROJ reads it: (south, north, west, east, description), or None."""
    return db.execute(
        """select e.south_lat, e.north_lat, e.west_lon, e.east_lon, e.description from usage u
           join extent e on e.auth_name = u.extent_auth_name and e.code = u.extent_code
           where u.object_table_name = ? and u.object_auth_name = 'EPSG' and u.object_code = ?
           order by u.rowid limit 1""", (table, str(code))).fetchone()


def pseudo_area(e):
    """PROJ's measure of an area of use (south, north, west, east): the longitude span times the difference of the
    sines of the latitudes."""
    s, n, w, east = e
    if w > east:
        east += 360.0
    return (east - w) * (math.sin(math.radians(n)) - math.sin(math.radians(s)))


def lon_ranges(e):
    """An area's longitudes as ranges without a jump at ±180° (two where it crosses the antimeridian)."""
    return [(e[2], e[3])] if e[2] <= e[3] else [(e[2], 180.0), (-180.0, e[3])]


def intersection(a, b):
    """The intersection of two areas (south, north, west, east), or None. An area across the antimeridian meeting
    one that is not gives the part on the other's side."""
    s, n = max(a[0], b[0]), min(a[1], b[1])
    if s > n:
        return None
    if a[2] > a[3] and b[2] > b[3]:
        return (s, n, max(a[2], b[2]), min(a[3], b[3]))
    parts = [(max(x0, y0), min(x1, y1)) for x0, x1 in lon_ranges(a) for y0, y1 in lon_ranges(b) if max(x0, y0) <= min(x1, y1)]
    if not parts:
        return None
    return (s, n, min(p[0] for p in parts), max(p[1] for p in parts))


def contains(a, b):
    """Whether area a holds area b."""
    if not (a[0] <= b[0] and b[1] <= a[1]):
        return False
    return all(any(x0 <= y0 and y1 <= x1 for x0, x1 in lon_ranges(a)) for y0, y1 in lon_ranges(b))


def helmert(db, code):
    """The parameters of an EPSG Helmert-type transformation as PROJ applies it: translations (m), rotations
    (arc-seconds, position vector), scale difference (ppm), pivot (m); `None` for a method terrafarm does not apply.
    Geocentric translations; position vector and coordinate frame Helmert; Molodensky-Badekas (coordinate frame,
    position vector): all in the geog2D domain, as PROJ applies them (through earth-centred coordinates, the
    rotations linearised)."""
    row = db.execute(
        """select method_code, tx, ty, tz, translation_uom_code, rx, ry, rz, rotation_uom_code,
                  scale_difference, scale_difference_uom_code, px, py, pz, pivot_uom_code
           from helmert_transformation_table where auth_name = 'EPSG' and code = ?""", (str(code),)).fetchone()
    if row is None:
        return None
    method, tx, ty, tz, tu, rx, ry, rz, ru, ds, du, px, py, pz, pu = row
    method = str(method)
    if method not in ("9603", "9606", "9607", "9636", "1063"):
        return None
    t = [v * conv(db, tu) for v in (tx, ty, tz)]
    if method == "9603":
        return t + [0.0] * 7
    sign = -1.0 if method in ("9607", "9636") else 1.0  # coordinate frame: the rotations' signs turned
    arcsec = 1.0 if str(ru) == "9104" else conv(db, ru) / (math.pi / 180 / 3600)
    ppm = 1.0 if str(du) == "9202" else conv(db, du) * 1e6
    pivot = [v * conv(db, pu) for v in (px, py, pz)] if method in ("9636", "1063") else [0.0] * 3
    return t + [round(sign * v * arcsec, 12) + 0.0 for v in (rx, ry, rz)] + [round(ds * ppm, 12)] + pivot


def chain(db, steps, pm):
    """A concatenated operation terrafarm applies: a longitude rotation first, or none, then one or more Helmert-type
    steps, which PROJ composes in earth-centred coordinates (its pipeline drops each step's return to the
    intermediate ellipsoid and the next step's leaving it). A rotation from the CRS's prime meridian `pm` (degrees)
    to Greenwich is what the PROJ string's `+pm` does; PROJ writes another (Tokyo 1892 to Korean 1985's 10.405″) as
    the meridian it would be. Returns (the rotation beyond the prime meridian, degrees; the steps' parameters as
    [`helmert`] gives them), or `None` (a grid, geographic offsets, ...)."""
    rotation, params = pm, []
    for i, code in enumerate(steps):
        other = db.execute(
            "select method_code, param1_code, param1_value, param1_uom_code from other_transformation where auth_name = 'EPSG' and code = ?",
            (code,)).fetchone()
        if other is not None:
            method, p, v, uom = other
            if i > 0 or str(method) != "9601" or str(p) != "8602":
                return None
            rotation = value(db, v, str(uom))
            continue
        step = helmert(db, code)
        if step is None:
            return None
        params.append(step)
    if not params:
        return None
    # The meridian's own rotation (Paris in grads, 0.3 mm from PROJ's `paris`) is the string's.
    return (0.0 if abs(math.radians(rotation - pm)) < 1e-10 else rotation - pm, params)


def shifts(db):
    """The transformations to WGS 84 (EPSG:4326) that PROJ chooses among, where no grid is installed, for the
    projected CRSs of [`conversions`] on a datum further than 3 m from WGS 84, in the order PROJ lists them for each
    CRS (what its choice per point depends on).

    Candidates: the operations from the CRS's base geographic CRS to WGS 84 of a known accuracy, neither deprecated
    nor superseded by another candidate, needing no grid, whose area of use meets the CRS's. Helmert
    transformations (geocentric translations, position vector, coordinate frame) and Molodensky-Badekas ones carry
    their parameters (translations in metres, rotations in arc-seconds in the position vector convention, the
    scale difference in parts per million, the pivot in metres), as a list of one step; a concatenated operation of
    such steps, after a longitude rotation or none, carries its rotation and steps ([`chain`]); any other operation
    (geographic offsets, ...) carries none, and where PROJ would choose it terrafarm does not place. The order is
    PROJ's sort (coordinateoperationfactory.cpp): the larger area shared with the CRS's first, then the better
    accuracy, fewer steps, the shorter name, the greater name. PROJ adds a ballpark (no shift) at the end unless a
    candidate's area holds the CRS's.

    Returns (operations: [(EPSG code, accuracy, area (south, north, west, east; one entry per side of the
    antimeridian), offshore, (longitude rotation beyond the prime meridian, [Helmert steps]) or None)], projected
    CRSs: [(code, PROJ string, first index into the list of operation indices, count, ballpark)], the list of
    operation indices)."""
    near = near_wgs84(db)
    supersession = [(str(old), str(new)) for old, new in db.execute(
        "select superseded_code, replacement_code from supersession where superseded_auth_name = 'EPSG' and replacement_auth_name = 'EPSG'")]
    by_base = {}

    def candidates(base):
        if base in by_base:
            return by_base[base]
        # The base CRS's prime meridian (the PROJ string's +pm): a longitude rotation by it is what proj4rs does.
        pm = db.execute("""select d.prime_meridian_code from geodetic_crs g
                           join geodetic_datum d on d.auth_name = g.datum_auth_name and d.code = g.datum_code
                           where g.auth_name = 'EPSG' and g.code = ?""", (str(base),)).fetchone()[0]
        pm = prime_meridian(db, pm)
        cands = []
        for code, name, acc in db.execute(
                """select code, name, accuracy from helmert_transformation_table
                   where auth_name = 'EPSG' and deprecated = 0 and source_crs_auth_name = 'EPSG' and source_crs_code = ?
                     and target_crs_auth_name = 'EPSG' and target_crs_code = '4326' and accuracy is not null""", (str(base),)):
            step = helmert(db, code)
            cands.append(("helmert_transformation", str(code), name, float(acc), None if step is None else (0.0, [step]), 1))
        for table in ("concatenated_operation", "other_transformation"):
            for code, name, acc in db.execute(
                    f"""select code, name, accuracy from {table}
                        where auth_name = 'EPSG' and deprecated = 0 and source_crs_auth_name = 'EPSG' and source_crs_code = ?
                          and target_crs_auth_name = 'EPSG' and target_crs_code = '4326' and accuracy is not null""", (str(base),)):
                steps, params = 1, None
                if table == "concatenated_operation":
                    if needs_grid(db, code):
                        continue
                    codes = [str(c) for (c,) in db.execute(
                        "select step_code from concatenated_operation_step where operation_auth_name = 'EPSG' and operation_code = ? order by step_number",
                        (str(code),))]
                    steps, params = len(codes), chain(db, codes, pm)
                cands.append((table, str(code), name, float(acc), params, steps))
        codes = {c[1] for c in cands}
        superseded = {old for old, new in supersession if new in codes}
        out = []
        for table, code, name, acc, params, steps in cands:
            if code in superseded:
                continue
            area = area_of_use(db, table.replace("_table", ""), code)
            if area is not None:
                # PROJ's test for an offshore area, on the description it reports as the area's name.
                out.append((int(code), name, acc, tuple(float(v) for v in area[:4]), "- offshore" in (area[4] or ""), params, steps))
        by_base[base] = out
        return out

    ops, index, lists, projected = [], {}, [], []
    for code, t, datum, ellps, base, greenwich in conversions(db):
        if datum in near and greenwich:
            continue
        crs_area = area_of_use(db, "projected_crs", code)
        if crs_area is None:
            continue
        crs_area = tuple(float(v) for v in crs_area[:4])
        listed = []
        for c in candidates(base):
            shared = intersection(c[3], crs_area)
            if shared is not None:
                listed.append((c, pseudo_area(shared)))
        if not any(c[5] is not None for c, _ in listed):
            continue
        # Equal up to the name's length: the greater name first (a stable sort on the name, descending, under the rest).
        listed.sort(key=lambda x: x[0][1], reverse=True)
        listed.sort(key=lambda x: (-x[1], x[0][2], x[0][6], len(x[0][1])))
        ballpark = not any(contains(c[3], crs_area) for c, _ in listed)
        first = len(lists)
        for c, _ in listed:
            op_code, name, acc, area, offshore, params, _ = c
            for part in ([area] if area[2] <= area[3] else [(area[0], area[1], area[2], 180.0), (area[0], area[1], -180.0, area[3])]):
                key = (op_code, part)
                if key not in index:
                    index[key] = len(ops)
                    ops.append((op_code, acc, part, offshore, params))
                lists.append(index[key])
        a, a_uom, rf, b = db.execute(
            "select semi_major_axis, uom_code, inv_flattening, semi_minor_axis from ellipsoid where auth_name = 'EPSG' and code = ?",
            (ellps,)).fetchone()
        k = conv(db, a_uom)
        shape = f"+a={a * k!r} +rf={rf!r}" if rf else f"+a={a * k!r} +b={b * k!r}"
        projected.append((code, f"{t} {shape}".replace(".0 ", " ").removesuffix(".0"), first, len(lists) - first, ballpark))
    assert len(lists) < 65536 and all(n < 256 for _, _, _, n, _ in projected), "SHIFTED's index types"
    return ops, projected, lists


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
    ops, shifted, lists = shifts(db)
    strings = sorted({t for _, t in placed} | {t for _, t, _, _, _ in shifted})
    index = {t: i for i, t in enumerate(strings)}
    out += [
        "];",
        "",
        "/// PROJ strings (read by proj4rs) of the projections in [`PROJECTIONS`] and [`SHIFTED`].",
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
    out += [
        "];",
        "",
        "/// EPSG projected CRSs of the same methods and axes on a datum further than 3 m from WGS 84 (OSGB36, Amersfoort,",
        "/// CH1903, LUREF, DHDN, ED50, NAD27, ...) with a Helmert or Molodensky-Badekas transformation to WGS 84 that PROJ",
        "/// may choose: (code, index into [`PROJ_STRINGS`], first index into [`SHIFT_LISTS`], count, whether PROJ ends the",
        "/// list with a ballpark), sorted by code.",
        "#[rustfmt::skip]",
        "pub const SHIFTED: &[(u16, u16, u16, u8, bool)] = &[",
    ]
    for i in range(0, len(shifted), 6):
        out.append("    " + " ".join(f"({c}, {index[t]}, {f}, {n}, {str(b).lower()})," for c, t, f, n, b in shifted[i : i + 6]))
    u16_table(out, "SHIFT_LISTS", lists, ["Each CRS of [`SHIFTED`]'s transformations to WGS 84, as indices into [`SHIFT_OPS`], in PROJ's order."])
    out += [
        "];",
        "",
        "/// A transformation of [`SHIFT_OPS`].",
        "pub type ShiftOp = (u16, f64, [f64; 4], bool, Option<(f64, &'static [[f64; 10]])>);",
        "",
        "/// The transformations to WGS 84 (EPSG:4326) of [`SHIFT_LISTS`]: (EPSG code, accuracy in metres, area of use",
        "/// [south, north, west, east] in degrees (one entry per side of the antimeridian), whether the area is offshore,",
        "/// and how terrafarm applies it: a longitude rotation (degrees) beyond the one from the CRS's prime meridian to",
        "/// Greenwich (the PROJ string's `+pm`), 0 for nearly all; then one or more Helmert or Molodensky-Badekas steps",
        "/// (more for a concatenated operation), composed in earth-centred coordinates, each with its translations",
        "/// (metres), rotations (arc-seconds, position vector), scale difference (parts per million) and pivot (metres; 0",
        "/// for a Helmert step)). `None`: a transformation terrafarm does not apply.",
        "#[rustfmt::skip]",
        "pub const SHIFT_OPS: &[ShiftOp] = &[",
    ]
    for c, acc, e, off, t in ops:
        params = "None" if t is None else f"Some(({float(t[0])!r}, &[" + ", ".join(
            "[" + ", ".join(repr(float(v)) for v in step) + "]" for step in t[1]) + "]))"
        out.append(f"    ({c}, {acc!r}, [{', '.join(repr(float(v)) for v in e)}], {str(off).lower()}, {params}),")
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
