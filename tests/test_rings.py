"""Rings read straight from WKB are the Rings of the shapely geometries."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import shapely

from pipeline.geom.rings import Rings

FIELDS = ("x", "y", "ring_off", "geom_rings", "sign", "bounds", "shell")


def _buffers(wkbs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """WKB stored back to back, as in an Arrow binary column: data and offsets."""
    offsets = np.cumsum([0] + [len(w) for w in wkbs])
    return np.frombuffer(b"".join(wkbs), dtype=np.uint8), offsets


def _assert_same(a: Rings, b: Rings) -> None:
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_polygons_holes_and_parts_match_rings_of():
    square_with_hole = shapely.Polygon(
        [(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (2, 4), (4, 4), (4, 2)]]
    )
    clockwise = shapely.Polygon([(20, 0), (20, 5), (25, 5), (25, 0)])  # stored clockwise
    two_parts = shapely.MultiPolygon([shapely.box(30, 0, 31, 1), square_with_hole])
    geoms = np.array([square_with_hole, clockwise, two_parts, shapely.Polygon()])
    got = Rings.from_wkb(*_buffers(list(shapely.to_wkb(geoms, flavor="iso"))))
    _assert_same(got, Rings.of(geoms))
    # by hand: shell, hole | shell | shell, shell, hole | one empty ring
    assert got.shell.tolist() == [True, False, True, True, True, False, True]
    assert got.geom_rings.tolist() == [0, 2, 3, 6, 7]
    assert got.ring_off.tolist() == [0, 5, 10, 15, 20, 25, 30, 30]
    # the clockwise shell is flagged −1 (its interior is on the right), the clockwise hole +1;
    # the empty ring (signed area 0, so not counter-clockwise) −1, as Rings.of gives
    assert got.sign.tolist() == [1, 1, -1, 1, 1, 1, -1]
    np.testing.assert_array_equal(got.bounds[1], [20, 0, 25, 5])
    assert np.isnan(got.bounds[3]).all()  # an empty polygon has no bounds


def test_z_and_m_ordinates_are_skipped():
    flat = shapely.box(0, 0, 2, 3)
    with_z = shapely.force_3d(flat, 7.0)
    got = Rings.from_wkb(*_buffers([shapely.to_wkb(with_z, flavor="iso")]))
    _assert_same(got, Rings.of(np.array([flat])))
    # an XYM polygon written by hand: type 2003, one ring of 4 points (x, y, m)
    ring = [(0, 0, 9), (1, 0, 9), (1, 1, 9), (0, 0, 9)]
    wkb = struct.pack("<BII I", 1, 2003, 1, 4) + b"".join(struct.pack("<3d", *p) for p in ring)
    got = Rings.from_wkb(*_buffers([wkb]))
    assert got.x.tolist() == [0, 1, 1, 0] and got.y.tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize(
    "wkb",
    [
        shapely.to_wkb(shapely.Point(0, 0)),  # not a polygon
        shapely.to_wkb(shapely.box(0, 0, 1, 1), byte_order=0),  # big-endian
        shapely.to_wkb(shapely.box(0, 0, 1, 1))[:-8],  # truncated
    ],
)
def test_anything_else_gives_none(wkb):
    assert Rings.from_wkb(*_buffers([shapely.to_wkb(shapely.box(0, 0, 1, 1)), wkb])) is None


def test_concat_is_rings_of_all():
    a = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)])
    b = np.array([shapely.MultiPolygon([shapely.box(5, 5, 6, 6), shapely.box(7, 7, 8, 8)])])
    _assert_same(Rings.concat([Rings.of(a), Rings.of(b)]), Rings.of(np.concatenate([a, b])))


def test_ingest_reads_the_rings_with_the_polygons(case):
    from pipeline.ingest.inputs import ingest
    from pipeline.settings.catalog import load_catalog
    from pipeline.settings.config import load_config

    catalog_path, config_path = case
    inputs = ingest(load_catalog(catalog_path), load_config(config_path)[0])
    lu = inputs.landuse
    assert sorted(lu.rings) == sorted(lu.frames)  # same CRS, nothing repaired: all kept
    for year, rings in lu.rings.items():
        _assert_same(rings, Rings.of(np.asarray(lu.frames[year].geometry.values)))


def _proven(*geoms):
    return Rings.of(np.array(geoms, dtype=object)).simple_valid().tolist()


def test_simple_valid_proves_plain_rings_and_leaves_the_rest_to_geos():
    square = shapely.box(0, 0, 10, 10)
    triangle = shapely.Polygon([(0, 0), (10, 0), (5, 8)])
    straight = shapely.Polygon([(0, 0), (5, 0), (10, 0), (10, 10), (0, 10)])  # a point mid-edge
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])  # edges cross: invalid
    spike = shapely.Polygon([(0, 0), (10, 0), (15, 0), (10, 0), (10, 10), (0, 10)])  # turns back
    # touching itself: the vertex (5, 0) of the notch lies on the bottom edge's line segment
    touch = shapely.Polygon([(0, 0), (10, 0), (10, 10), (5, 0.0), (0, 10)])
    repeated = shapely.Polygon([(0, 0), (10, 0), (10, 0), (10, 10), (0, 10)])
    holed = shapely.Polygon(square.exterior.coords, [shapely.box(2, 2, 4, 4).exterior.coords])
    two = shapely.MultiPolygon([square, shapely.box(20, 0, 30, 10)])
    assert _proven(square, triangle, straight) == [True, True, True]
    assert _proven(bowtie, spike, touch) == [False, False, False]  # GEOS finds them invalid
    assert not any(shapely.is_valid([bowtie, spike, touch]))
    # valid, but not the simple case: asked of GEOS all the same
    assert _proven(repeated, holed, two) == [False, False, False]


def test_simple_valid_never_proves_what_geos_finds_invalid():
    rng = np.random.default_rng(5)
    # random rings of 4–12 points: about half cross themselves; snapped to a 1 m grid so that
    # many touch or run along themselves exactly; at national coordinates
    offset = np.array([1_234_567.0, 3_456_789.0])
    geoms = []
    for _ in range(3000):
        pts = np.round(rng.uniform(0, 20, (rng.integers(3, 12), 2))) + offset
        geoms.append(shapely.Polygon(pts))
    geoms = np.array(geoms, dtype=object)
    proven = Rings.of(geoms).simple_valid()
    valid = shapely.is_valid(geoms)
    assert proven.sum() > 300 and (~valid).sum() > 1000
    assert not (proven & ~valid).any()
