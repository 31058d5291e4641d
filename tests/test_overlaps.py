"""The overlap check on random partitions: planted overlaps are found whatever the number of strips
the coverage pass is cut into, and a clean partition passes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from pipeline.config import DEFAULT_EQUAL_AREA_CRS
from pipeline.engine import Engine
from pipeline.errors import InputError
from pipeline.overlaps import _flagged, check_overlaps

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


@pytest.mark.parametrize("strips", [1, 2, 3, 7])
def test_shifted_cell_is_flagged_for_any_strip_count(strips):
    cells = _partition(5)
    clean = _flagged(_gdf(cells), np.asarray(COUNTIES.geometry.values), strips)
    assert len(clean) == 0
    # a copy of the cell at the middle of the map, shifted 200 m east: overlaps its neighbours
    k = int(np.argmin(shapely.distance(shapely.centroid(cells), shapely.Point(30_000, 20_000))))
    bad = np.append(cells, shapely.affinity.translate(cells[k], 200, 0))
    flagged = _flagged(_gdf(bad), np.asarray(COUNTIES.geometry.values), strips)
    assert len(bad) - 1 in flagged


def test_check_overlaps_on_a_second_year_with_one_changed_cell():
    cells = _partition(9)
    later = cells.copy()
    later[10] = shapely.buffer(later[10], 150)  # grows into its neighbours
    lu = {2010: _gdf(cells), 2018: _gdf(later)}
    with pytest.raises(InputError, match="landuse 2018"):
        check_overlaps(COUNTIES, lu, Engine(workers=2, progress=False))
    lu[2018] = _gdf(cells)
    out, identical = check_overlaps(COUNTIES, lu, Engine(workers=2, progress=False))
    assert (identical[2018] == np.arange(len(cells))).all()  # every cell recurs as it is
    assert out[2018] is lu[2018]
