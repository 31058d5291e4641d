"""The overlap check on random partitions: planted overlaps are found, however small, and a clean
partition passes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from pipeline.errors import InputError
from pipeline.geom.overlap_screen import overlap_suspects
from pipeline.runtime.engine import Engine
from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS
from pipeline.zonal.overlaps import check_overlaps

CRS = DEFAULT_EQUAL_AREA_CRS


def _partition(seed: int, n: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = shapely.box(0, 0, 60_000, 40_000)
    pts = shapely.multipoints(rng.uniform((0, 0), (60_000, 40_000), size=(n, 2)))
    return shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=frame)), frame
    )


def _gdf(geoms) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"class_code": np.full(len(geoms), 21)}, geometry=list(geoms), crs=CRS)


COUNTIES = gpd.GeoDataFrame(
    {"county_id": ["w", "e"], "area_m2": [1.2e9, 1.2e9]},
    geometry=[shapely.box(0, 0, 30_000, 40_000), shapely.box(30_000, 0, 60_000, 40_000)],
    crs=CRS,
)


@pytest.mark.parametrize("shift", [200, 0.5, 1e-3, 0])
def test_shifted_copy_of_a_cell_is_flagged(shift):
    cells = _partition(5)
    clean = overlap_suspects(cells)
    assert len(clean) == 0
    # a copy of the cell at the middle of the map, shifted east: overlaps its neighbours (0: the
    # cell itself, an exact duplicate)
    k = int(np.argmin(shapely.distance(shapely.centroid(cells), shapely.Point(30_000, 20_000))))
    bad = np.append(cells, shapely.affinity.translate(cells[k], shift, 0))
    flagged = overlap_suspects(bad)
    assert {k, len(bad) - 1} <= set(flagged)


def test_check_overlaps_on_a_second_year_with_one_changed_cell():
    cells = _partition(9)
    later = cells.copy()
    later[10] = shapely.buffer(later[10], 150)  # grows into its neighbours
    lu = {2010: _gdf(cells), 2018: _gdf(later)}
    with pytest.raises(InputError, match="landuse 2018"):
        check_overlaps(COUNTIES, lu, Engine(workers=2, progress=False))
    lu[2018] = _gdf(cells)
    out, identical, trees = check_overlaps(COUNTIES, lu, Engine(workers=2, progress=False))
    assert (identical[2018] == np.arange(len(cells))).all()  # every cell recurs as it is
    assert out[2018] is lu[2018]
    # each year's STRtree, for the zonal stage: over that year's polygons as they are
    assert all(trees[y].geometries is not None and len(trees[y]) == len(cells) for y in lu)


def test_two_overlapping_tiles_are_found_whole_and_resolved():
    # Two independent partitions, one of x < 33 km and one of x > 27 km: in the 6 km band every
    # polygon of one tile overlaps some of the other, yet each tile's inner edges are matched.
    # Every overlapping pair must be found, not only those along the tiles' borders.
    west = shapely.intersection(_partition(11, 1200), shapely.box(0, 0, 33_000, 40_000))
    east = shapely.intersection(_partition(12, 1200), shapely.box(27_000, 0, 60_000, 40_000))
    cells = np.concatenate([west[~shapely.is_empty(west)], east[~shapely.is_empty(east)]])
    i, j = shapely.STRtree(cells).query(cells)
    keep = i < j
    area = shapely.area(shapely.intersection(cells[i[keep]], cells[j[keep]]))
    n_true = int((area > 1.0).sum())  # pairs sharing over 1 m² (OVERLAP_TOLERANCE_HA)
    assert n_true > 100
    engine = Engine(workers=2, progress=False)
    with pytest.raises(InputError, match=f"{n_true} pairs of land-use polygons overlap"):
        check_overlaps(COUNTIES, {2010: _gdf(cells)}, engine)
    out, _, trees = check_overlaps(COUNTIES, {2010: _gdf(cells)}, engine, policy="first")
    assert trees == {}  # the polygons changed: no tree of them is handed on
    resolved = np.asarray(out[2010].geometry.values)
    # resolved: the polygons' areas add up to the area they cover, 60 km × 40 km
    assert shapely.area(resolved).sum() == pytest.approx(60_000 * 40_000, rel=1e-9)


def _square_county(size: float) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"county_id": ["c"], "area_m2": [size * size]},
        geometry=[shapely.box(0, 0, size, size)],
        crs=CRS,
    )


def test_a_polygon_copied_in_a_later_year_is_reported():
    # 2020 holds cell 0 twice: the copy recurs from 2010 like the original, but is new area
    # (100 m × 100 m = 1 ha counted twice), so it must not pass as "unchanged"
    cells = [shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)]
    counties = _square_county(200)
    lu = {2010: _gdf(cells), 2020: _gdf([*cells, cells[0]])}
    with pytest.raises(InputError, match=r"landuse 2020: 1 pairs .* 1\.00 ha"):
        check_overlaps(counties, lu, Engine(workers=1, progress=False))


def test_overlap_reached_only_through_slivers_is_found():
    # (from the review) two nested sets: A = frame with a hole, a ring, a core; B = a ring and a
    # core 5 mm smaller. The rings overlap their neighbours by < 1 m² (10.02² − 10² = 0.40 m²
    # and 10² − 9.99² = 0.20 m²), the cores by 9.99² = 99.80 m²; only the rings are flagged.
    def ring(outer, inner):
        return shapely.Polygon(shapely.box(*outer).exterior, [shapely.box(*inner).exterior])

    geoms = [
        ring((0, 0, 100, 100), (44.98, 44.98, 55.02, 55.02)),
        ring((44.98, 44.98, 55.02, 55.02), (45, 45, 55, 55)),
        shapely.box(45, 45, 55, 55),
        ring((44.99, 44.99, 55.01, 55.01), (45.005, 45.005, 54.995, 54.995)),
        shapely.box(45.005, 45.005, 54.995, 54.995),
    ]
    with pytest.raises(InputError, match=r"1 pairs of land-use polygons overlap, 0\.01 ha"):
        check_overlaps(_square_county(100), {2010: _gdf(geoms)}, Engine(workers=1, progress=False))
