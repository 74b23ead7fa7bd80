#!/usr/bin/python3
"""Points projected by GDAL (PROJ, through GDAL's Python bindings) for the test of terrafarm's inverse projections
(tests/georef.rs): reads EPSG projected CRS codes, one per line, on stdin; for each, a 5 × 5 grid of longitudes
and latitudes over the middle 80% of the CRS's area of use, projected from the CRS's own geographic CRS (so no
datum shift is involved; in its units and from its prime meridian) with the axis order GeoTIFF files use (easting,
northing). Prints `code lon lat x y` per point (longitude and latitude in degrees from Greenwich, x and y in the
CRS's own unit), and `code skipped reason` for a CRS GDAL cannot use.

With --wgs84, each point also goes from the projected CRS to WGS 84 (EPSG:4326) as GDAL transforms it by default
where no transformation grid is installed (PROJ's data directory holds only proj.db, network off): PROJ picks a
transformation per point. Prints `code lon lat x y lon84 lat84`.

    printf '2154\\n3413\\n' | /usr/bin/python3 .ci/proj_points.py
    printf '27700\\n28992\\n' | /usr/bin/python3 .ci/proj_points.py --wgs84
"""
import math
import os
import sys
import tempfile


def no_grids():
    """Re-runs this script with PROJ's data directory holding only proj.db (so no grid can be found), unless it
    is that run."""
    if os.environ.get("TERRAFARM_PROJ_NO_GRIDS") == "1":
        return
    from osgeo import osr
    db = next((os.path.join(p, "proj.db") for p in osr.GetPROJSearchPaths() if os.path.exists(os.path.join(p, "proj.db"))), None)
    if db is None:
        sys.exit("proj.db not found on PROJ's search path")
    d = tempfile.mkdtemp(prefix="proj-no-grids-")
    os.symlink(db, os.path.join(d, "proj.db"))
    env = dict(os.environ, PROJ_DATA=d, PROJ_LIB=d, PROJ_NETWORK="OFF", TERRAFARM_PROJ_NO_GRIDS="1")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    wgs84 = "--wgs84" in sys.argv[1:]
    if wgs84:
        no_grids()
    from osgeo import osr

    osr.UseExceptions()
    target = osr.SpatialReference()
    target.ImportFromEPSG(4326)
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    for line in sys.stdin:
        code = int(line)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(code)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        geo = srs.CloneGeogCS()
        geo.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        area = srs.GetAreaOfUse()
        if area is None:
            print(code, "skipped", "no-area-of-use")
            continue
        west, south, east, north = area.west_lon_degree, area.south_lat_degree, area.east_lon_degree, area.north_lat_degree
        if east < west:  # across the antimeridian
            east += 360.0
        # (GDAL's WKT 1 gives the prime meridian in degrees.)
        pm, unit = float(geo.GetAttrValue("PRIMEM", 1) or 0.0), math.degrees(geo.GetAngularUnits())
        ct = osr.CoordinateTransformation(geo, srs)
        to84 = osr.CoordinateTransformation(srs, target) if wgs84 else None
        for i in range(5):
            for j in range(5):
                lon = west + (east - west) * (0.1 + 0.2 * i)
                lat = south + (north - south) * (0.1 + 0.2 * j)
                lon = lon - 360.0 if lon > 180.0 else lon
                try:
                    # In the geographic CRS's own units and from its own prime meridian (NTF (Paris) is in grads
                    # from Paris); the printed longitude and latitude are degrees from Greenwich.
                    x, y, _ = ct.TransformPoint((lon - pm) / unit, lat / unit)
                    extra = ""
                    if to84:
                        lon84, lat84, _ = to84.TransformPoint(x, y)
                        extra = f" {lon84!r} {lat84!r}"
                except RuntimeError:
                    continue
                if math.isfinite(x) and math.isfinite(y):
                    print(code, repr(lon), repr(lat), repr(x), repr(y) + extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
