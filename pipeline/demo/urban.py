"""Urban cores (cities and county towns) and their built-up intensity field."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from pipeline.demo.places import JJJ_CITIES, JJJ_PROVINCES

ALBERS_PROJ = (
    "+proj=aea +lat_0=0 +lat_1=25 +lat_2=47 +lon_0=105 +x_0=0 +y_0=0 +ellps=krass +units=m +no_defs"
)
_PROJ = pyproj.Proj(ALBERS_PROJ)


def lonlat_to_albers(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 lon/lat treated as Krasovsky geographic coordinates (no datum shift) → Albers m."""
    x, y = _PROJ(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return np.asarray(x), np.asarray(y)


def albers_to_lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = _PROJ(np.asarray(x, dtype=float), np.asarray(y, dtype=float), inverse=True)
    return np.asarray(lon), np.asarray(lat)


def geoms_to_albers(geoms: np.ndarray) -> np.ndarray:
    coords = shapely.get_coordinates(geoms)
    x, y = lonlat_to_albers(coords[:, 0], coords[:, 1])
    return shapely.set_coordinates(geoms.copy(), np.column_stack([x, y]))


@dataclass(frozen=True)
class Cores:
    x: np.ndarray  # Albers m
    y: np.ndarray
    r: np.ndarray  # radius 2010, m
    growth: np.ndarray  # radius factor 2010 → 2018
    town: np.ndarray  # True for county towns, False for cities / urban districts

    def intensity(
        self,
        x: np.ndarray,
        y: np.ndarray,
        year: int = 2010,
        widen: float = 1.0,
        towns: bool = True,
    ) -> np.ndarray:
        """max over cores of exp(−(d/r)²); r grown for 2018, widened by ``widen``."""
        out = np.zeros(x.shape, dtype=np.float64)
        if x.size == 0:
            return out
        order = np.argsort(x, kind="stable")
        xs = x[order]
        ys = y[order]
        use = np.ones(self.x.shape, dtype=bool) if towns else ~self.town
        r_all = (self.r * (self.growth if year >= 2018 else 1.0) * widen)[use]
        best = np.zeros(x.shape, dtype=np.float64)
        for cx, cy, r in zip(self.x[use], self.y[use], r_all, strict=True):
            reach = 3.0 * r
            lo = np.searchsorted(xs, cx - reach, side="left")
            hi = np.searchsorted(xs, cx + reach, side="right")
            if hi <= lo:
                continue
            d2 = (xs[lo:hi] - cx) ** 2 + (ys[lo:hi] - cy) ** 2
            np.maximum(best[lo:hi], np.exp(-d2 / (r * r)), out=best[lo:hi])
        out[order] = best
        return out


def build_cores(counties: gpd.GeoDataFrame, albers_geoms: np.ndarray, seed: int) -> Cores:
    """Cities: hard-coded for Beijing–Tianjin–Hebei; elsewhere each urban district (name ending
    in 区) is a core sized from its area. Every county larger than 300 km² gets a county town."""
    rng = np.random.default_rng([seed, 101])
    xs: list[float] = []
    ys: list[float] = []
    rs: list[float] = []
    gs: list[float] = []
    town: list[bool] = []
    provinces = set(counties["province"])
    if provinces & JJJ_PROVINCES:
        for _name, lon, lat, r_km, growth in JJJ_CITIES:
            x, y = lonlat_to_albers(np.array([lon]), np.array([lat]))
            xs.append(float(x[0]))
            ys.append(float(y[0]))
            rs.append(r_km * 1000.0)
            gs.append(growth)
            town.append(False)
    area_km2 = shapely.area(albers_geoms) / 1e6
    rep = shapely.point_on_surface(albers_geoms)
    rx = shapely.get_x(rep)
    ry = shapely.get_y(rep)
    jitter = rng.random(len(counties))
    growth_j = rng.random(len(counties))
    for i, (name, province) in enumerate(zip(counties["name"], counties["province"], strict=True)):
        a = float(area_km2[i])
        if province not in JJJ_PROVINCES and str(name).endswith("区"):
            req = np.sqrt(a / np.pi) * 1000.0
            f = float(np.interp(a, [100.0, 1000.0], [0.95, 0.25]))
            xs.append(float(rx[i]))
            ys.append(float(ry[i]))
            rs.append(float(np.clip(req * f, 1500.0, 9000.0)))
            gs.append(1.2 + 0.2 * float(growth_j[i]))
            town.append(False)
        elif a > 300.0:
            xs.append(float(rx[i]))
            ys.append(float(ry[i]))
            rs.append(1400.0 + 1000.0 * float(jitter[i]))
            gs.append(1.25 + 0.25 * float(growth_j[i]))
            town.append(True)
    return Cores(np.array(xs), np.array(ys), np.array(rs), np.array(gs), np.array(town, dtype=bool))
