#!/usr/bin/python3
"""Points projected by GDAL (PROJ, through GDAL's Python bindings) for the test of terrafarm's inverse projections
(tests/georef.rs): reads EPSG projected CRS codes, one per line, on stdin; for each, a 5 × 5 grid of longitudes
and latitudes over the middle 80% of the CRS's area of use, projected from the CRS's own geographic CRS (so no
datum shift is involved) with the axis order GeoTIFF files use (easting, northing). Prints
`code lon lat x y` per point (x and y in the CRS's own unit), and `code skipped reason` for a CRS GDAL cannot use.

    printf '2154\\n3413\\n' | /usr/bin/python3 .ci/proj_points.py
"""
import math
import sys

from osgeo import osr

osr.UseExceptions()


def main():
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
        ct = osr.CoordinateTransformation(geo, srs)
        for i in range(5):
            for j in range(5):
                lon = west + (east - west) * (0.1 + 0.2 * i)
                lat = south + (north - south) * (0.1 + 0.2 * j)
                lon = lon - 360.0 if lon > 180.0 else lon
                try:
                    x, y, _ = ct.TransformPoint(lon, lat)
                except RuntimeError:
                    continue
                if math.isfinite(x) and math.isfinite(y):
                    print(code, repr(lon), repr(lat), repr(x), repr(y))
    return 0


if __name__ == "__main__":
    sys.exit(main())
