"""Raster land use: the change map (``landuse_change.tif`` and its polygons) and each year's land
use as polygons (``landuse_<year>``), built from the pixels the raster transfer matrix counts.

Tiny grids as in test_raster_zonal.py: 30 m pixels (900 m² = 0.09 ha) with the top-left corner
at (X0, Y0 + 300) in the Albers plane; pixel (row r, column c) is
x ∈ [X0 + 30c, X0 + 30(c+1)], y ∈ [Y0 + 300 − 30(r+1), Y0 + 300 − 30r].
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
import yaml
from affine import Affine
from rasterio.features import rasterize, shapes

from conftest import LANDUSE, X0, Y0, box_km, write_case
from pipeline.errors import InputError
from pipeline.geom.cell_area import lonlat_box_area
from pipeline.run import run_pipeline
from pipeline.runtime.engine import Engine
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS
from pipeline.zonal.raster import raster_zonal_areas
from pipeline.zonal.raster_pieces import _components, change_pairs, change_values

CRS = DEFAULT_EQUAL_AREA_CRS
RES = 30.0
PX = RES * RES / 1e4  # 0.09 ha
SERIAL = Engine(workers=1, progress=False)
K = {12: 0.0, 21: 1.0, 31: 0.33, 43: 2.10, 51: 0.0}


def _tif(path, arr, crs=CRS, transform=None):
    transform = transform or Affine(RES, 0.0, X0, 0.0, -RES, Y0 + 300.0)
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0],
                       count=1, dtype=arr.dtype, crs=crs, transform=transform, nodata=0) as dst:  # fmt: skip
        dst.write(arr, 1)
    return path


def _xbox(c0: float, r0: float, c1: float, r1: float) -> shapely.Polygon:
    """Columns c0..c1, rows r0..r1 of the tiny grid (fractions allowed)."""
    top = Y0 + 300.0
    return shapely.box(X0 + RES * c0, top - RES * r1, X0 + RES * c1, top - RES * r0)


def _counties(geoms, ids):
    import geopandas as gpd

    return gpd.GeoDataFrame({"county_id": ids}, geometry=list(geoms), crs=CRS)


def _off_diagonal(transitions: pd.DataFrame) -> pd.Series:
    """Per county, the transfer matrix's changed cells where both years have a class."""
    t = transitions
    keep = (t["from_code"] != t["to_code"]) & (t["from_code"] != 0) & (t["to_code"] != 0)
    return t[keep].groupby("county_id")["area_ha"].sum()


def _check_sums(res) -> None:
    """Σ area_ha of the pieces = the off-diagonal transitions; each year's pieces = class_areas."""
    off = _off_diagonal(res.transitions)
    got = res.changes.groupby("county_id")["area_ha"].sum().reindex(off.index, fill_value=0.0)
    np.testing.assert_allclose(got, off, rtol=0, atol=1e-9)
    for year, layer in (res.landuse or {}).items():
        ca = res.class_areas[res.class_areas["year"] == year]
        want = ca.groupby(["county_id", "class_code"])["area_ha"].sum()
        have = layer.groupby(["county_id", "class_code"])["area_ha"].sum().reindex(want.index)
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-9)


def _case(tmp_path):
    """10 × 10 px, cropland 12 everywhere in 2010; in 2018 rows 2–3, columns 3–7 are forest 21
    (10 px), pixel (9, 0) urban 51 and pixel (0, 9) no data. County A: x ∈ [0, 5.4] px, B:
    [5.4, 10] px, both rows 0–9 (pixel row 9 is outside every county)."""
    a = np.full((10, 10), 12, np.uint8)
    b = a.copy()
    b[2:4, 3:8] = 21
    b[9, 0] = 51
    b[0, 9] = 0
    paths = {2010: _tif(tmp_path / "a.tif", a), 2018: _tif(tmp_path / "b.tif", b)}
    counties = _counties([_xbox(0, 0, 5.4, 9), _xbox(5.4, 0, 10, 9)], ["A", "B"])
    return paths, counties


def test_change_map_centre_rule_by_hand(tmp_path):
    paths, counties = _case(tmp_path)
    tif = tmp_path / "change.tif"
    res = raster_zonal_areas(counties, paths, SERIAL, transitions=(2010, 2018), change_map=True,
                             change_tif=tif, landuse_layers=True)  # fmt: skip
    ch = res.changes
    # centres: columns 3, 4 (centres 3.5, 4.5 < 5.4) in A: 2 rows × 2 = 4 px = 0.36 ha;
    # columns 5, 6, 7 (5.5 > 5.4) in B: 2 × 3 = 6 px = 0.54 ha
    assert ch.drop(columns="geometry").to_dict("records") == [
        {"county_id": "A", "from_code": 12, "to_code": 21, "area_ha": pytest.approx(4 * PX)},
        {"county_id": "B", "from_code": 12, "to_code": 21, "area_ha": pytest.approx(6 * PX)},
    ]
    # A's piece lies inside A as it is; B's is clipped to B: columns 5.4–8 (2.6 × 2 px), while
    # its area_ha stays the matrix's 6 whole pixels
    assert shapely.equals(ch.geometry[0], _xbox(3, 2, 5, 4))
    assert shapely.equals(ch.geometry[1], _xbox(5.4, 2, 8, 4))
    assert ch.geometry[1].area == pytest.approx(2.6 * 2 * 900)
    _check_sums(res)
    # the no-data pixel (0, 9) is 12 → 0 in the matrix but no piece; row 9 is outside
    assert res.transitions.query("to_code == 0")["area_ha"].tolist() == [pytest.approx(PX)]
    with rasterio.open(tif) as src:
        arr = src.read(1)
        assert src.dtypes[0] == "uint32" and src.nodata == 0 and src.crs == CRS
        assert src.transform == Affine(RES, 0.0, X0, 0.0, -RES, Y0 + 300.0)
        assert src.profile["tiled"] and src.compression is not None
    want = np.zeros((10, 10), np.uint32)
    want[2:4, 3:8] = 12 * 1000 + 21  # 12021; (9, 0) is outside, (0, 9) has no 2018 class
    np.testing.assert_array_equal(arr, want)
    # each year's land use: 2018, A = 5 columns × 9 rows = 45 px − 4 forest = 41 px cropland
    l18 = res.landuse[2018].drop(columns="geometry")
    got = {(r.county_id, r.class_code): r.area_ha for r in l18.itertuples()}
    assert got == pytest.approx({("A", 12): 41 * PX, ("A", 21): 4 * PX,
                                 ("B", 12): 38 * PX, ("B", 21): 6 * PX})  # fmt: skip
    # B: 5 × 9 = 45 px − 6 forest − the no-data pixel = 38 px
    for layer in (res.changes, res.landuse[2010], res.landuse[2018]):
        inside = [shapely.covers(counties.geometry[{"A": 0, "B": 1}[c]].buffer(1e-6), g)
                  for c, g in zip(layer["county_id"], layer.geometry)]  # fmt: skip
        assert all(inside)


def test_change_map_exact_borders_by_hand(tmp_path):
    paths, counties = _case(tmp_path)
    res = raster_zonal_areas(counties, paths, SERIAL, transitions=(2010, 2018), border="exact",
                             change_map=True, landuse_layers=True)  # fmt: skip
    ch = res.changes.drop(columns="geometry")
    # column 5 is cut at 5.4: A covers 0.4 of each of its pixels, B 0.6. Changed pixels:
    # A: columns 3, 4 whole (4 px = 0.36 ha) + column 5 rows 2–3 at 0.4 (0.8 px = 0.072 ha);
    # B: columns 6, 7 whole (4 px = 0.36 ha) + column 5 rows 2–3 at 0.6 (1.2 px = 0.108 ha)
    got = sorted(zip(ch["county_id"], ch["area_ha"]))
    assert [c for c, _ in got] == ["A", "A", "B", "B"]
    assert [a for _, a in got] == pytest.approx([0.8 * PX, 4 * PX, 1.2 * PX, 4 * PX])
    geoms = {(c, round(a / PX, 6)): g for c, a, g in zip(ch["county_id"], ch["area_ha"],
                                                          res.changes.geometry)}  # fmt: skip
    assert shapely.equals(geoms[("A", 0.8)], _xbox(5, 2, 5.4, 4))  # pixel box ∩ county
    assert shapely.equals(geoms[("B", 1.2)], _xbox(5.4, 2, 6, 4))
    assert shapely.equals(geoms[("B", 4.0)], _xbox(6, 2, 8, 4))
    for g, a in zip(res.changes.geometry, ch["area_ha"]):  # exact borders: polygons = areas
        assert g.area / 1e4 == pytest.approx(a, rel=1e-9)
    _check_sums(res)


@pytest.mark.parametrize("border", ["center", "exact"])
def test_change_map_on_a_lonlat_grid(tmp_path, border):
    # a 12 × 16 grid of 0.001° cells near 40°N; cells of a row share one area (the exact
    # ellipsoidal box, as the matrix counts them); counties in the Albers plane, cut along a
    # diagonal so that both rules meet partial pixels
    import geopandas as gpd

    transform = Affine(0.001, 0.0, 116.0, 0.0, -0.001, 40.012)
    a = np.full((12, 16), 12, np.uint8)
    b = a.copy()
    b[3:9, 2:14] = 21
    b[5, 5] = 51
    paths = {2010: _tif(tmp_path / "a.tif", a, "EPSG:4326", transform),
             2018: _tif(tmp_path / "b.tif", b, "EPSG:4326", transform)}  # fmt: skip
    west = shapely.Polygon([(116.0, 40.0), (116.0093, 40.0), (116.0061, 40.012), (116.0, 40.012)])
    east = shapely.Polygon([(116.0093, 40.0), (116.016, 40.0), (116.016, 40.012),
                            (116.0061, 40.012)])  # fmt: skip
    counties = gpd.GeoDataFrame({"county_id": ["W", "E"]}, geometry=[west, east],
                                crs="EPSG:4326").to_crs(CRS)  # fmt: skip
    res = raster_zonal_areas(counties, paths, SERIAL, transitions=(2010, 2018), border=border,
                             change_map=True, landuse_layers=True)  # fmt: skip
    _check_sums(res)
    # the single 51 pixel (row 5: 40.007–40.006°N) is one piece of W with the exact area of its
    # lon/lat box on WGS84 (it lies wholly west of the boundary, x = 116.0093 − 0.0032·(y − 40)/0.012
    # ≈ 116.0076 at row 5)
    urban = res.changes[res.changes["to_code"] == 51]
    row5 = lonlat_box_area(np.radians(0.001), np.radians(40.006), np.radians(40.007),
                           6378137.0, 1 / 298.257223563)  # fmt: skip
    assert urban["county_id"].tolist() == ["W"]
    assert urban["area_ha"].iloc[0] == pytest.approx(float(row5) / 1e4, rel=1e-12)
    assert 0.9 < float(row5) / 1e4 < 1.0  # 0.001° ≈ 85 m × 111 m ≈ 0.95 ha


def test_codes_that_do_not_fit_are_refused():
    # 1000 would read as from + 1 in from · 1000 + to
    pairs = change_pairs(np.array([0, 1, 2]), np.array([0, 1, 2]), 4)
    with pytest.raises(InputError, match="0–999"):
        change_values([0, 5, 7], [0, 5, 1000], pairs, "landuse")
    values = change_values([0, 5, 7], [0, 5, 999], pairs, "landuse")
    assert values[1, 2] == 5999 and values[2, 1] == 7005 and values[1, 1] == 0


def test_components_equal_rasterio_shapes():
    # the union-find labelling against rasterio.features.shapes: one polygon per 4-connected
    # component of one value, covering exactly that component's pixels
    rng = np.random.default_rng(7)
    for _ in range(20):
        key = rng.integers(0, 4, size=(23, 31)).astype(np.int64)
        labels, keys = _components(key)
        assert (labels > 0).sum() == (key > 0).sum()
        polys = list(shapes(key.astype(np.int32), mask=key > 0, connectivity=4))
        assert len(polys) == len(keys) - 1
        counts = np.bincount(labels.ravel())[1:]
        for geom, value in polys:
            g = shapely.geometry.shape(geom)
            # a polygon's pixels (identity transform: unit pixels) are one label's pixels
            inside = rasterize([(g, 1)], out_shape=key.shape, fill=0, dtype="uint8") > 0
            (lab,) = np.unique(labels[inside])
            assert keys[lab] == value and counts[lab - 1] == inside.sum() == round(g.area)


def test_run_writes_tif_style_and_layers(tmp_path):
    # the two-county case of conftest burned to 500 m pixels (25 ha each): 甲县 lost 2,500 ha of
    # forest 21 to urban 51 (100 px), 乙县 2,500 ha of grass 31 to reservoir 43
    catalog, config = write_case(tmp_path / "case")
    data = tmp_path / "case" / "data"
    transform = Affine(500.0, 0.0, X0, 0.0, -500.0, Y0 + 10_000.0)
    spec = yaml.safe_load(catalog.read_text("utf-8"))
    for year, patches in LANDUSE.items():
        arr = rasterize([(box_km(*b), c) for c, b in patches], out_shape=(20, 50),
                        transform=transform, fill=0, dtype="uint8")  # fmt: skip
        _tif(data / f"lu_{year}.tif", arr, transform=transform)
        spec["datasets"]["landuse"][year] = {"path": f"data/lu_{year}.tif", "format": "raster"}
    catalog.write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    out = tmp_path / "out"
    gpkg = run_pipeline(catalog, config, out, SERIAL, landuse_change=True,
                        landuse_layers=True).gpkg  # fmt: skip
    ch = pyogrio.read_dataframe(gpkg, layer="landuse_change")
    assert ch.drop(columns="geometry").to_dict("records") == [
        {"county_id": "110101", "from_code": 21, "to_code": 51, "area_ha": pytest.approx(2500.0),
         "sf_change_ha": pytest.approx(-2500.0)},  # 2,500 · (0 − 1.00)
        {"county_id": "130102", "from_code": 31, "to_code": 43, "area_ha": pytest.approx(2500.0),
         "sf_change_ha": pytest.approx(4425.0)},  # 2,500 · (2.10 − 0.33)
    ]  # fmt: skip
    cv = pyogrio.read_dataframe(gpkg, layer="county_vouchers", read_geometry=False)
    dm = (cv["sf_target_ha"] - cv["sf_base_ha"]).to_numpy()
    np.testing.assert_allclose(ch["sf_change_ha"].to_numpy(), dm, atol=1e-9)
    with rasterio.open(out / "landuse_change.tif") as src:
        values, counts = np.unique(src.read(1), return_counts=True)
    assert dict(zip(values.tolist(), counts.tolist())) == {0: 800, 21051: 100, 31043: 100}
    qml = (out / "landuse_change.qml").read_text("utf-8")
    assert 'type="paletted"' in qml and 'value="21051"' in qml and "林地 → 建设用地" in qml
    layers = set(pyogrio.list_layers(gpkg)[:, 0])
    assert {"landuse_2010", "landuse_2018"} <= layers
    l18 = pyogrio.read_dataframe(gpkg, layer="landuse_2018")
    assert list(l18.columns) == [
        "county_id",
        "class_code",
        "class_group",
        "area_ha",
        "legend",
        "geometry",
    ]
    ca = pyogrio.read_dataframe(gpkg, layer="class_areas", read_geometry=False)
    want = ca[ca["year"] == 2018].groupby(["county_id", "class_code"])["area_ha"].sum()
    have = l18.groupby(["county_id", "class_code"])["area_ha"].sum()
    pd.testing.assert_series_equal(have, want, check_exact=False, rtol=0, atol=1e-9)
    # a run without the options removes them from the folder, and writes no such layers
    gpkg = run_pipeline(catalog, config, out, SERIAL).gpkg
    assert not (out / "landuse_change.tif").exists() and not (out / "landuse_change.qml").exists()
    assert not {"landuse_change", "landuse_2018"} & set(pyogrio.list_layers(gpkg)[:, 0])


# --- the demo's raster variant: the sums per county ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("border", ["center", "exact"])
def test_demo_raster_sums_per_county(tmp_path_factory, border):
    """Beijing's demo data burned to 90 m (as test_raster_zonal's demo test): per county Σ area_ha
    of the change pieces = the off-diagonal transitions, Σ area·(k_to − k_from) = M_t − M_0, each
    year's pieces = class_areas, all to 1e-9; every piece inside its county."""
    from pipeline.demo import build_demo_data
    from pipeline.demo.rasterize import burn_landuse_rasters

    folder = tmp_path_factory.getbasetemp() / "bj_demo_raster"
    paths = build_demo_data(folder, provinces=("北京市",), polygons_per_year=5000, progress=False)
    rasters = burn_landuse_rasters(folder, resolution=90.0)
    counties = pyogrio.read_dataframe(paths.counties, layer="counties").to_crs(CRS)
    counties = counties.rename(columns={"adcode": "county_id"})[["county_id", "geometry"]]
    counties["county_id"] = counties["county_id"].astype(str)
    res = raster_zonal_areas(counties, rasters, Engine(workers=2, progress=False),
                             transitions=(2010, 2018), border=border, change_map=True,
                             landuse_layers=True, block_size=256)  # fmt: skip
    assert len(res.changes) > 100
    _check_sums(res)

    # ΔM per county from the pieces equals M_t − M_0 of the class areas, for any k with k(0) = 0
    # (here k = 0.013 · code): the pieces plus the rows with no data on one side (no piece)
    def k(codes: pd.Series) -> pd.Series:
        return 0.013 * codes.astype(float)

    ca = res.class_areas
    sf = (ca["area_ha"] * k(ca["class_code"])).groupby([ca["county_id"], ca["year"]]).sum()
    dm = sf.xs(2018, level="year").sub(sf.xs(2010, level="year"), fill_value=0.0)
    ch = res.changes
    flow = (ch["area_ha"] * (k(ch["to_code"]) - k(ch["from_code"]))).groupby(ch["county_id"]).sum()
    t = res.transitions
    nd = t[(t["from_code"] == 0) | (t["to_code"] == 0)]
    nd_flow = (
        (nd["area_ha"] * (k(nd["to_code"]) - k(nd["from_code"]))).groupby(nd["county_id"]).sum()
    )
    total = flow.reindex(dm.index, fill_value=0.0) + nd_flow.reindex(dm.index, fill_value=0.0)
    np.testing.assert_allclose(total, dm, rtol=0, atol=1e-9)
    geoms = counties.set_index("county_id").geometry
    for layer in (ch, res.landuse[2018]):
        county = geoms.reindex(layer["county_id"]).buffer(1e-3).values
        assert shapely.covers(county, layer.geometry.values).all()


def test_float_rasters_give_the_same_change_map(tmp_path):
    # the same grids as float32 (read through the 16-bit codes of ingest.pixels): same pieces
    paths, counties = _case(tmp_path)
    floats = {}
    for year, path in paths.items():
        with rasterio.open(path) as src:
            floats[year] = _tif(tmp_path / f"f{year}.tif", src.read(1).astype(np.float32))
    a = raster_zonal_areas(counties, paths, SERIAL, transitions=(2010, 2018), change_map=True)
    b = raster_zonal_areas(counties, floats, SERIAL, transitions=(2010, 2018), change_map=True)
    pd.testing.assert_frame_equal(a.changes.drop(columns="geometry"),
                                  b.changes.drop(columns="geometry"))  # fmt: skip
    assert shapely.equals(a.changes.geometry.values, b.changes.geometry.values).all()
