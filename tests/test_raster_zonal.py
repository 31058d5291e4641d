"""Raster land use: areas on tiny grids that can be counted by hand, no data, roll-up, CRS and
grid checks, the transfer matrix and its identity, dask = serial bit for bit, exact borders equal
the vector path, and the raster and vector paths agree on the demo within the documented error.

Every tiny grid is 30 m pixels (900 m² = 0.09 ha each) with its top-left corner at (X0, Y0 + 300)
in the Albers plane, so pixel (row r, column c) is the square
x ∈ [X0 + 30c, X0 + 30(c+1)], y ∈ [Y0 + 300 − 30(r+1), Y0 + 300 − 30r].
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.features import shapes

from conftest import X0, Y0
from pipeline.errors import InputError
from pipeline.runtime.engine import Engine
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS
from pipeline.zonal.raster import raster_zonal_areas
from pipeline.zonal.vector import zonal_areas

CRS = DEFAULT_EQUAL_AREA_CRS
RES = 30.0
PX_HA = RES * RES / 1e4  # 900 m² = 0.09 ha
SERIAL = Engine(workers=1, progress=False)
#: standard-forest coefficients for the identity checks (paper Table 1, a subset)
K = {21: 1.0, 22: 0.89, 24: 0.65, 31: 0.33, 32: 0.28, 41: 2.10, 43: 2.10}


def _tif(path: Path, arr: np.ndarray, crs=CRS, nodata=0, origin=(X0, Y0 + 300.0), res=RES) -> Path:
    transform = Affine(res, 0.0, origin[0], 0.0, -res, origin[1])
    with rasterio.open(
        path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
        dtype=arr.dtype, crs=crs, transform=transform, nodata=nodata,
    ) as dst:  # fmt: skip
        dst.write(arr, 1)
    return path


def _px_box(r0: int, c0: int, r1: int, c1: int) -> shapely.Polygon:
    """The union of pixels rows r0..r1−1, columns c0..c1−1 of the tiny grid."""
    top = Y0 + 300.0
    return shapely.box(X0 + RES * c0, top - RES * r1, X0 + RES * c1, top - RES * r0)


def _counties(geoms, ids=None, crs=CRS) -> gpd.GeoDataFrame:
    ids = ids or [f"c{i}" for i in range(len(geoms))]
    return gpd.GeoDataFrame({"county_id": ids}, geometry=list(geoms), crs=crs)


def _areas(df: pd.DataFrame) -> dict:
    return {(r.county_id, r.year, r.class_code): r.area_ha for r in df.itertuples()}


def _trans(df: pd.DataFrame) -> dict:
    return {(r.county_id, r.from_code, r.to_code): r.area_ha for r in df.itertuples()}


def _sf(class_areas: pd.DataFrame, year: int) -> pd.Series:
    d = class_areas[class_areas["year"] == year]
    return (d["area_ha"] * d["class_code"].map(K).fillna(0.0)).groupby(d["county_id"]).sum()


def _check_identity(res, base: int, target: int) -> None:
    """M_t − M_0 = Σ area(from→to) · (k_to − k_from), county by county."""
    t = res.transitions
    flow = t["area_ha"] * (t["to_code"].map(K).fillna(0.0) - t["from_code"].map(K).fillna(0.0))
    flow = flow.groupby(t["county_id"]).sum()
    static = _sf(res.class_areas, target).sub(_sf(res.class_areas, base), fill_value=0.0)
    ids = sorted(set(flow.index) | set(static.index))
    np.testing.assert_allclose(
        flow.reindex(ids, fill_value=0.0), static.reindex(ids, fill_value=0.0), atol=1e-9
    )


# --- hand-counted areas ---------------------------------------------------------------------------


def test_areas_rollup_and_pixels_outside_counties(tmp_path):
    arr = np.full((10, 10), 12, dtype=np.uint8)  # dry cropland everywhere
    arr[1:4, 1:4] = 21  # a 3 × 3 forest square …
    arr[5:10, 5:10] = 111  # … and paddy sub-code 111 (rolls up to 11) in the south-east
    arr[9, 9] = 124  # one dry-cropland sub-code pixel (rolls up to 12)
    tif = _tif(tmp_path / "lu.tif", arr)
    counties = _counties([_px_box(1, 1, 4, 4), _px_box(5, 5, 10, 10)], ["A", "B"])
    got = _areas(raster_zonal_areas(counties, {2010: tif}, SERIAL).class_areas)
    assert got == pytest.approx(
        {
            ("A", 2010, 21): 0.81,  # 9 px × 900 m² = 8,100 m² = 0.81 ha
            ("B", 2010, 11): 2.16,  # 24 px of 111 → 11: 24 × 0.09 = 2.16 ha
            ("B", 2010, 12): 0.09,  # the 124 pixel → 12: 0.09 ha
        },
        abs=1e-12,
    )  # the 100 − 9 − 25 = 66 px outside both counties count nowhere


def test_pixel_centre_rule_and_block_size(tmp_path):
    # A county from x = X0 + 72 (2.4 px) to X0 + 240 (8 px) and from y = top − 228 (row 7.6) to
    # top − 30 (row 1): it holds the pixel centres of columns 2–7 (centre of column 2 at 2.5 px
    # > 2.4) and rows 1–7 (centre of row 7 at 7.5 < 7.6): 6 × 7 = 42 px = 3.78 ha, while the
    # polygon is 168 m × 198 m = 3.3264 ha (a tiny county: the centre rule's error is large here).
    arr = np.full((10, 10), 31, dtype=np.uint8)
    tif = _tif(tmp_path / "lu.tif", arr)
    top = Y0 + 300.0
    county = _counties([shapely.box(X0 + 72.0, top - 228.0, X0 + 240.0, top - 30.0)])
    for block in (64, 2048):
        got = _areas(raster_zonal_areas(county, {2010: tif}, SERIAL, block_size=block).class_areas)
        assert got == pytest.approx({("c0", 2010, 31): 3.78}, abs=1e-12)
    exact = raster_zonal_areas(county, {2010: tif}, SERIAL, border="exact").class_areas
    assert exact["area_ha"].sum() == pytest.approx(168 * 198 / 1e4, abs=1e-9)  # 3.3264 ha


def test_nodata_counts_nowhere(tmp_path):
    arr = np.full((10, 10), 22, dtype=np.uint8)
    arr[1, 1] = 255  # the file's nodata value
    arr[2, 2] = 0  # 0 is never a class code: no data as well
    tif = _tif(tmp_path / "lu.tif", arr, nodata=255)
    county = _counties([_px_box(1, 1, 4, 4)])  # 9 px
    res = raster_zonal_areas(county, {2010: tif, 2018: tif}, SERIAL, transitions=(2010, 2018))
    # 9 − 2 = 7 px of shrubland = 0.63 ha: the county's coverage is 7/9
    assert _areas(res.class_areas) == pytest.approx(
        {("c0", 2010, 22): 0.63, ("c0", 2018, 22): 0.63}, abs=1e-12
    )
    assert _trans(res.transitions) == pytest.approx({("c0", 22, 22): 0.63}, abs=1e-12)


def test_unknown_code_inside_a_county_is_refused_outside_ignored(tmp_path):
    arr = np.full((10, 10), 21, dtype=np.uint8)
    arr[0, 9] = 99  # outside the county: ignored
    tif = _tif(tmp_path / "ok.tif", arr)
    county = _counties([_px_box(1, 1, 4, 4)])
    assert len(raster_zonal_areas(county, {2010: tif}, SERIAL).class_areas) == 1
    arr[2, 2] = 99
    arr[3, 3] = 99
    bad = _tif(tmp_path / "bad.tif", arr)
    with pytest.raises(InputError, match=r"99 \(2 px\)") as err:
        raster_zonal_areas(county, {2010: bad}, SERIAL)
    assert "bad.tif" in str(err.value)


def test_int16_and_float_rasters(tmp_path):
    # signed and floating-point grids are read too; float NaN and the nodata value are no data
    arr = np.full((10, 10), 41, dtype=np.int16)
    arr[1, 1] = -9999
    i16 = _tif(tmp_path / "i16.tif", arr, nodata=-9999)
    f32 = arr.astype(np.float32)
    f32[1, 2] = np.nan
    flt = _tif(tmp_path / "f32.tif", f32, nodata=-9999)
    county = _counties([_px_box(1, 1, 4, 4)])
    for tif, n in ((i16, 8), (flt, 7)):
        got = _areas(raster_zonal_areas(county, {2010: tif}, SERIAL).class_areas)
        assert got == pytest.approx({("c0", 2010, 41): n * PX_HA}, abs=1e-12)


# --- CRS and grids ------------------------------------------------------------------------------


@pytest.mark.parametrize("border", ["center", "exact"])
def test_utm_grid_cells_count_with_their_own_area(tmp_path, border):
    # a UTM 50N grid of 30 m cells on its central meridian (117°E), no longer refused: every cell
    # is measured as its corners' quadrilateral in the run's Albers. The UTM scale there is
    # k0 = 0.9996, so a 30 m map cell covers 900 / 0.9996² = 900.72 m² of ground; the county is
    # the 3 × 3 cells, 9 × 900.72 ≈ 8,106.5 m²; measured in the run's Albers on Krasovsky's
    # ellipsoid (PROJ takes WGS84 lon/lat over as they are), which is larger by
    # (6378245 / 6378137)² = 1.0000339: 8,106.5 × 1.0000339 ≈ 8,106.8 m² ≈ 0.81068 ha
    arr = np.full((10, 10), 21, dtype=np.uint8)
    utm = _tif(tmp_path / "utm.tif", arr, crs="EPSG:32650", origin=(500_000.0, 4_000_300.0))
    square = shapely.segmentize(shapely.box(500_030, 4_000_030, 500_120, 4_000_120), 1.0)
    county = _counties([square], crs="EPSG:32650").to_crs(CRS)
    got = raster_zonal_areas(county, {2010: utm}, SERIAL, border=border)
    area = got.class_areas["area_ha"].iloc[0]
    assert area == pytest.approx(9 * 900 / 0.9996**2 * (6378245 / 6378137) ** 2 / 1e4, rel=1e-6)
    # the independent figure: the square's own area in the Albers plane (edges densified 1 m)
    assert area == pytest.approx(county.area.iloc[0] / 1e4, rel=1e-7)
    assert "quadrilateral" in " ".join(got.notes) and "utm.tif" in " ".join(got.notes)


@pytest.mark.parametrize("border", ["center", "exact"])
def test_lonlat_grid_cells_are_exact_ellipsoidal_boxes(tmp_path, border):
    # a WGS84 lon/lat grid of 1″ cells (~31 × 25 m at 36°N); a county of 3 × 3 cells (rows 1..3,
    # columns 1..3); each cell's area is its lon/lat box on WGS84, checked against Karney's
    # geodesic polygon area (pyproj.Geod) of the county's box, parallels densified
    from pyproj import Geod

    res = 1 / 3600
    arr = np.full((10, 10), 12, dtype=np.uint8)
    arr[1:4, 1:4] = 21
    arr[2, 2] = 42
    geo = _tif(tmp_path / "geo.tif", arr, crs="EPSG:4326", origin=(117.0, 36.0), res=res)
    lon0, lat1 = 117.0 + res, 36.0 - res  # the county's north-west corner
    box = shapely.segmentize(shapely.box(lon0, lat1 - 3 * res, lon0 + 3 * res, lat1), res / 50)
    county = _counties([box], crs="EPSG:4326").to_crs(CRS)
    got = _areas(raster_zonal_areas(county, {2010: geo}, SERIAL, border=border).class_areas)
    geod = Geod(ellps="WGS84")
    lons = np.r_[np.linspace(lon0, lon0 + 3 * res, 100), np.linspace(lon0 + 3 * res, lon0, 100)]
    lats = np.r_[np.full(100, lat1 - 3 * res), np.full(100, lat1)]
    whole = abs(geod.polygon_area_perimeter(lons, lats)[0]) / 1e4  # ha
    assert got[("c0", 2010, 21)] + got[("c0", 2010, 42)] == pytest.approx(whole, rel=1e-7)
    # the middle cell alone, row 2: its own box
    mid = abs(geod.polygon_area_perimeter(
        [lon0 + res, lon0 + 2 * res, lon0 + 2 * res, lon0 + res],
        [lat1 - 2 * res, lat1 - 2 * res, lat1 - res, lat1 - res])[0]) / 1e4  # fmt: skip
    assert got[("c0", 2010, 42)] == pytest.approx(mid, rel=1e-7)
    assert set(got) == {("c0", 2010, 21), ("c0", 2010, 42)}


def test_raster_with_another_legend(tmp_path):
    # MODIS IGBP (MCD12C1) codes: 0 is a class (water), 255 no data; the zonal numbers are the
    # legend's positions (0 → 1, 10 → 11), which the output turns back into codes
    from pipeline.settings.legends import load_legend

    modis = load_legend("modis_igbp")
    arr = np.full((10, 10), 255, dtype=np.uint8)
    arr[1:4, 1:4] = 10  # 9 px grassland
    arr[1, 1] = 0  # 1 px water
    tif = _tif(tmp_path / "modis.tif", arr, nodata=None)
    county = _counties([_px_box(0, 0, 5, 5)])
    got = raster_zonal_areas(county, {2010: tif}, SERIAL, legends={2010: modis}).class_areas
    codes = dict(zip(modis.from_internal(got["class_code"]), got["area_ha"]))
    assert codes == pytest.approx({0: 1 * PX_HA, 10: 8 * PX_HA}, abs=1e-12)
    # a value that is no class of the legend names the legend and the value
    arr[4, 4] = 77
    bad = _tif(tmp_path / "bad.tif", arr, nodata=None)
    with pytest.raises(InputError, match=r"legend 'modis_igbp'.*77 \(1 px\)"):
        raster_zonal_areas(county, {2010: bad}, SERIAL, legends={2010: modis})


def test_other_equal_area_crs_reprojects_the_counties(tmp_path):
    laea = "+proj=laea +lat_0=36 +lon_0=117 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
    arr = np.full((10, 10), 12, dtype=np.uint8)
    arr[1:4, 1:4] = 21
    tif = _tif(tmp_path / "laea.tif", arr, crs=laea, origin=(0.0, 300.0))
    # the 3 × 3 square drawn in the raster's LAEA plane, handed over in the run's Albers CRS
    square = _counties([shapely.box(30, 180, 120, 270)], crs=laea).to_crs(CRS)
    got = _areas(raster_zonal_areas(square, {2010: tif}, SERIAL).class_areas)
    assert got == pytest.approx({("c0", 2010, 21): 0.81}, abs=1e-12)  # 9 px × 0.09 ha


def test_transitions_need_one_grid(tmp_path):
    arr = np.full((10, 10), 21, dtype=np.uint8)
    a = _tif(tmp_path / "lu_2010.tif", arr)
    b = _tif(tmp_path / "lu_2018.tif", arr, origin=(X0 + 15.0, Y0 + 300.0))  # half a pixel east
    county = _counties([_px_box(1, 1, 4, 4)])
    with pytest.raises(InputError, match="one grid") as err:
        raster_zonal_areas(county, {2010: a, 2018: b}, SERIAL, transitions=(2010, 2018))
    assert "lu_2010.tif" in str(err.value) and "lu_2018.tif" in str(err.value)
    # class areas alone may come from different grids: each year is counted on its own
    got = raster_zonal_areas(county, {2010: a, 2018: b}, SERIAL).class_areas
    assert len(got) == 2 and got["area_ha"].iloc[0] == pytest.approx(0.81)


# --- transfer matrix --------------------------------------------------------------------------------


def test_transfer_matrix_and_identity(tmp_path):
    y10 = np.full((10, 10), 21, dtype=np.uint8)
    y18 = y10.copy()
    y18[1, 1:4] = 51  # 3 px forest → urban
    y18[2, 1] = 41  # 1 px forest → river
    y18[3, 3] = 0  # 1 px forest → no data in 2018
    y10[2, 3] = 0  # 1 px no data in 2010 → forest (2018 keeps 21)
    a = _tif(tmp_path / "a.tif", y10)
    b = _tif(tmp_path / "b.tif", y18)
    county = _counties([_px_box(1, 1, 4, 4)])  # rows 1–3 × columns 1–3
    for border in ("center", "exact"):
        res = raster_zonal_areas(
            county, {2010: a, 2018: b}, SERIAL, transitions=(2010, 2018), border=border
        )
        assert _trans(res.transitions) == pytest.approx(
            {
                ("c0", 0, 21): 1 * PX_HA,  # no data 2010 → forest
                ("c0", 21, 0): 1 * PX_HA,  # forest → no data 2018
                ("c0", 21, 21): 3 * PX_HA,  # (2,2), (3,1), (3,2)
                ("c0", 21, 41): 1 * PX_HA,
                ("c0", 21, 51): 3 * PX_HA,
            },
            abs=1e-12,
        )
        # M_0 = 8 px forest = 0.72 ha; M_t = (4 px forest + 2.1 × 1 px river) × 0.09 = 0.549 ha
        assert _sf(res.class_areas, 2010)["c0"] == pytest.approx(0.72)
        assert _sf(res.class_areas, 2018)["c0"] == pytest.approx(0.549)
        _check_identity(res, 2010, 2018)


# --- engines, blocks, exact borders -----------------------------------------------------------------


def _random_case(tmp_path: Path, seed: int = 1):
    """A 300 × 250 px grid of clustered random classes, two years, and five counties: a disc, a
    rotated square with a hole, a multipolygon and two triangles sharing a diagonal edge."""
    rng = np.random.default_rng(seed)
    codes = np.array([11, 12, 21, 22, 24, 31, 32, 41, 43, 51, 52], dtype=np.uint8)
    coarse = rng.integers(0, len(codes), size=(30, 25))
    y10 = codes[np.kron(coarse, np.ones((10, 10), dtype=int))]
    y18 = y10.copy()
    flip = rng.random(y10.shape) < 0.05
    y18[flip] = rng.choice(codes, size=int(flip.sum()))
    y18[200:210, 30:40] = 0  # a no-data hole in 2018
    origin = (X0, Y0 + 300 * RES)
    a = _tif(tmp_path / "r10.tif", y10, origin=origin)
    b = _tif(tmp_path / "r18.tif", y18, origin=origin)
    x, y = X0, Y0
    disc = shapely.Point(x + 2000, y + 6000).buffer(1700, quad_segs=64)
    sq = shapely.affinity.rotate(shapely.box(x + 4500, y + 4500, x + 6500, y + 6500), 17)
    sq = sq.difference(shapely.Point(x + 5500, y + 5500).buffer(400))
    multi = shapely.MultiPolygon(
        [shapely.box(x + 300, y + 300, x + 1333, y + 1777),
         shapely.Point(x + 2500, y + 2500).buffer(500)]
    )  # fmt: skip
    t1 = shapely.Polygon([(x + 3000, y + 100), (x + 7400, y + 100), (x + 3000, y + 3900)])
    t2 = shapely.Polygon([(x + 7400, y + 100), (x + 7400, y + 3900), (x + 3000, y + 3900)])
    counties = _counties([disc, sq, multi, t1, t2], ["D", "S", "M", "T1", "T2"])
    g = counties.geometry.values
    assert shapely.union_all(g).area == pytest.approx(shapely.area(g).sum())  # no overlaps
    return counties, {2010: a, 2018: b}


@pytest.mark.parametrize("border", ["center", "exact"])
def test_dask_equals_serial_bit_for_bit(tmp_path, border):
    counties, rasters = _random_case(tmp_path)
    kw = {"transitions": (2010, 2018), "border": border, "block_size": 64}
    serial = raster_zonal_areas(counties, rasters, SERIAL, **kw)
    dask = raster_zonal_areas(counties, rasters, Engine(workers=2, progress=False), **kw)
    pd.testing.assert_frame_equal(serial.class_areas, dask.class_areas, check_exact=True)
    pd.testing.assert_frame_equal(serial.transitions, dask.transitions, check_exact=True)
    # the row order of the counties does not matter either
    shuffled = raster_zonal_areas(counties.iloc[::-1], rasters, SERIAL, **kw)
    pd.testing.assert_frame_equal(serial.class_areas, shuffled.class_areas, check_exact=True)
    _check_identity(serial, 2010, 2018)


def test_cached_county_grid_is_reused(tmp_path):
    counties, rasters = _random_case(tmp_path)
    cache = tmp_path / "cache"
    first = raster_zonal_areas(counties, rasters, SERIAL, cache_dir=cache)
    (zones,) = cache.glob("zones-*.tif")
    stamp = zones.stat().st_mtime_ns
    again = raster_zonal_areas(counties, rasters, SERIAL, cache_dir=cache)
    assert zones.stat().st_mtime_ns == stamp  # read back, not burned again
    pd.testing.assert_frame_equal(first.class_areas, again.class_areas, check_exact=True)
    moved = counties.copy()
    moved.geometry = moved.translate(30.0, 0.0)
    raster_zonal_areas(moved, rasters, SERIAL, cache_dir=cache)
    assert len(list(cache.glob("zones-*.tif"))) == 2  # other geometries, another key


def test_cached_county_grid_is_checked_before_use(tmp_path, caplog):
    # a cached county grid whose bytes changed (here: every county id set to county 1) is not
    # used: its sha256 no longer matches the one written beside it, so it is burned again and
    # the areas are those of a fresh run; a grid without its checksum is burned again too
    counties, rasters = _random_case(tmp_path)
    cache = tmp_path / "cache"
    first = raster_zonal_areas(counties, rasters, SERIAL, cache_dir=cache)
    (zones,) = cache.glob("zones-*.tif")
    with rasterio.open(zones, "r+") as dst:
        arr = dst.read(1)
        dst.write(np.where(arr > 0, 1, 0).astype(arr.dtype), 1)
    again = raster_zonal_areas(counties, rasters, SERIAL, cache_dir=cache)
    assert "checksum does not match" in caplog.text
    pd.testing.assert_frame_equal(first.class_areas, again.class_areas, check_exact=True)
    zones.with_name(zones.name + ".sha256").unlink()
    raster_zonal_areas(counties, rasters, SERIAL, cache_dir=cache)
    assert "no checksum beside it" in caplog.text


def _polygonize(tif: Path) -> gpd.GeoDataFrame:
    """The raster as pixel-exact polygons (no-data pixels left out)."""
    with rasterio.open(tif) as src:
        arr = src.read(1)
        geoms, codes = [], []
        for geom, value in shapes(arr, mask=arr != 0, transform=src.transform):
            geoms.append(shapely.geometry.shape(geom))
            codes.append(int(value))
    return gpd.GeoDataFrame({"class_code": codes}, geometry=geoms, crs=CRS)


def test_exact_border_equals_vector_path(tmp_path):
    # Land use that is exactly its pixels (the raster polygonized), so that the vector path's
    # areas are the truth for the raster path; the counties' edges cut pixels everywhere.
    counties, rasters = _random_case(tmp_path)
    vector = {y: _polygonize(p) for y, p in rasters.items()}
    truth = zonal_areas(counties, vector, SERIAL, transitions=(2010, 2018))
    kw = {"transitions": (2010, 2018), "block_size": 64}
    exact = raster_zonal_areas(counties, rasters, SERIAL, border="exact", **kw)
    centre = raster_zonal_areas(counties, rasters, SERIAL, border="center", **kw)
    keys = ["county_id", "year", "class_code"]
    for res, tol in ((exact, 1e-6), (centre, None)):
        m = truth.class_areas.merge(res.class_areas, on=keys, how="outer").fillna(0.0)
        err = (m["area_ha_x"] - m["area_ha_y"]).abs()
        if tol:
            assert err.max() < tol
        else:
            assert err.max() > 0.05  # the centre rule does move area at these borders …
            # … but little: each boundary crosses ~500 pixels, and their errors cancel
            assert err.max() < 2.0
    m = truth.transitions.merge(
        exact.transitions, on=["county_id", "from_code", "to_code"], how="outer"
    ).fillna(0.0)
    assert (m["area_ha_x"] - m["area_ha_y"]).abs().max() < 1e-6
    # and the county totals are the polygons' areas (the grid covers every county)
    tot = exact.class_areas.groupby(["county_id", "year"])["area_ha"].sum()
    area = counties.set_index("county_id").area / 1e4
    nodata_2018 = exact.transitions.query("to_code == 0").groupby("county_id")["area_ha"].sum()
    for cid, a in area.items():
        assert tot[(cid, 2010)] == pytest.approx(a, abs=1e-6)
        assert tot[(cid, 2018)] + nodata_2018.get(cid, 0.0) == pytest.approx(a, abs=1e-6)


# --- the demo: raster and vector agree within the documented border error ----------------------


@pytest.mark.slow
def test_demo_raster_agrees_with_vector(tmp_path):
    import pyogrio

    from pipeline.demo import build_demo_data
    from pipeline.demo.rasterize import burn_landuse_rasters

    paths = build_demo_data(tmp_path, provinces=("北京市",), polygons_per_year=5000, progress=False)
    res = 90.0
    rasters = burn_landuse_rasters(tmp_path, resolution=res)
    assert burn_landuse_rasters(tmp_path, resolution=res) == rasters  # up to date: skipped
    with rasterio.open(rasters[2010]) as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 0 and src.res == (res, res)
    counties = pyogrio.read_dataframe(paths.counties, layer="counties").to_crs(CRS)
    counties = counties.rename(columns={"adcode": "county_id"})[["county_id", "geometry"]]
    counties["county_id"] = counties["county_id"].astype(str)
    landuse = {}
    for year, shp in ((2010, paths.landuse_2010), (2018, paths.landuse_2018)):
        lu = pyogrio.read_dataframe(shp, columns=["gridcode"], encoding="gbk")
        landuse[year] = gpd.GeoDataFrame(
            {"class_code": lu["gridcode"].astype(int)}, geometry=lu.geometry.values
        ).set_crs(CRS, allow_override=True)
    vector = zonal_areas(counties, landuse, SERIAL, transitions=(2010, 2018))
    raster = raster_zonal_areas(
        counties, rasters, Engine(workers=2, progress=False), transitions=(2010, 2018)
    )
    _check_identity(raster, 2010, 2018)
    # Documented bounds (pipeline/raster_zonal.py, docs/raster.md) at 30 m, raster against vector:
    # 15 ha per county and class, 0.25 % of standard forest for counties over 100 km² holding
    # more than 1,000 ha of it, 5 ha of static voucher; random edge errors grow as (pixel
    # side)^1.5, so ×5.2 at 90 m. Measured here at 90 m: 35 ha, 0.57 %, 12 ha.
    scale = (res / 30.0) ** 1.5
    keys = ["county_id", "year", "class_code"]
    m = vector.class_areas.merge(raster.class_areas, on=keys, how="outer").fillna(0.0)
    assert (m["area_ha_x"] - m["area_ha_y"]).abs().max() < 15 * scale
    area = counties.set_index("county_id").area
    for year in (2010, 2018):
        sf_v, sf_r = _sf(vector.class_areas, year), _sf(raster.class_areas, year)
        big = sf_v.index[(area.reindex(sf_v.index) > 100e6) & (sf_v > 1000)]
        rel = ((sf_r.reindex(big) - sf_v[big]).abs() / sf_v[big]).max()
        assert rel < 0.0025 * scale
    static_v = _sf(vector.class_areas, 2018) - _sf(vector.class_areas, 2010)
    static_r = _sf(raster.class_areas, 2018) - _sf(raster.class_areas, 2010)
    assert (static_v - static_r).abs().max() < 5 * scale


def test_validate_reads_every_pixel_against_the_legend(tmp_path):
    # a CLCD grid (codes 1–9) with one stray 12 outside any county: run would never see it,
    # validate names it with the legend
    from pipeline.settings.legends import load_legend
    from pipeline.zonal.raster import check_raster_values

    clcd = load_legend("clcd")
    arr = np.full((10, 10), 2, dtype=np.uint8)
    arr[0, 0] = 0  # no data
    ok = _tif(tmp_path / "clcd_ok.tif", arr)
    check_raster_values(2020, ok, None, clcd)
    arr[9, 9] = 12
    bad = _tif(tmp_path / "clcd_bad.tif", arr)
    with pytest.raises(InputError, match=r"legend 'clcd'.*12 \(1 px\)") as err:
        check_raster_values(2020, bad, None, clcd)
    assert "clcd_bad.tif" in str(err.value)
    # the same grid read as RESDC: its 98 pixels of 2 (100 − 1 no data − 1 of 12) are no RESDC
    # code, while 12 is one (旱地)
    with pytest.raises(InputError, match=r"'resdc'.*: 2 \(98 px\)\. Its codes"):
        check_raster_values(2020, bad, None, load_legend("resdc"))


@pytest.mark.parametrize("seed", [1, 2])
def test_exact_border_against_exactextract(tmp_path, seed):
    """Coverage fractions (numba, ``border="exact"``) against exactextract's on the random grid:
    the counties of :func:`_random_case` (a disc, a square with a hole, a multipolygon, two
    triangles sharing an edge), then random Voronoi counties clipped to a disc, so that edges
    cross pixels at every angle. exactextract gives, per county, the covered pixel count
    (Σ coverage fraction) and each value's share of it: area = share × count × 0.09 ha."""
    exactextract = pytest.importorskip("exactextract")  # in the test extra
    counties, rasters = _random_case(tmp_path, seed)
    if seed == 2:
        rng = np.random.default_rng(seed)
        pts = shapely.multipoints(np.c_[X0, Y0] + rng.uniform(500, 7000, size=(40, 2)))
        disc = shapely.Point(X0 + 3750, Y0 + 4500).buffer(3300, quad_segs=64)
        cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(pts)), disc)
        counties = _counties(cells[~shapely.is_empty(cells)])
    ours = raster_zonal_areas(counties, rasters, SERIAL, border="exact", block_size=64)
    rows = []
    for year, path in rasters.items():
        got = exactextract.exact_extract(
            str(path), counties, ["unique", "frac", "count"], include_cols=["county_id"],
            output="pandas",
        )  # fmt: skip
        for r in got.itertuples():
            for code, share in zip(np.atleast_1d(r.unique), np.atleast_1d(r.frac)):
                if code != 0:  # no data: not a class (the no-data hole of 2018)
                    rows.append((r.county_id, year, int(code), share * r.count * PX_HA))
    ref = pd.DataFrame(rows, columns=["county_id", "year", "class_code", "area_ha"])
    keys = ["county_id", "year", "class_code"]
    m = ours.class_areas.merge(ref, on=keys, how="outer").fillna(0.0)
    assert len(m) > 50  # county × year × class rows compared
    np.testing.assert_allclose(m["area_ha_x"], m["area_ha_y"], rtol=1e-9, atol=1e-7)
