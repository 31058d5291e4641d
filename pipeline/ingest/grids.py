"""Raster land use: open a grid (rasterio), check its CRS, georeferencing and block table (no
pixels read). The pixels are counted by :mod:`pipeline.zonal.raster`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine
from pyproj import CRS
from pyproj.exceptions import CRSError

from pipeline.errors import InputError

__all__ = ["Grid", "describe_grid", "open_grid"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grid:
    """One raster's grid and how to read its values."""

    year: int
    path: Path
    crs: CRS
    transform: Affine
    width: int
    height: int
    dtype: str
    nodata: float | None
    tile: tuple[int, int]  # internal block shape (rows, cols)
    unit_m: float  # metres per CRS unit

    @property
    def pixel_area_m2(self) -> float:
        t = self.transform
        return abs(t.a * t.e - t.b * t.d) * self.unit_m**2

    def same_grid(self, other: Grid) -> bool:
        tol = 1e-9 * max(abs(self.transform.a), abs(self.transform.e))
        return (
            (self.width, self.height) == (other.width, other.height)
            and self.transform.almost_equals(other.transform, precision=tol)
            and (self.crs == other.crs or self.crs.equals(other.crs, ignore_axis_order=True))
        )

    def key(self) -> str:
        return repr((self.crs.to_wkt(), tuple(self.transform)[:6], self.width, self.height))


def open_grid(year: int, path: Path, crs_override: str | None) -> Grid:
    where = f"landuse {year} ({path})"
    if not path.exists():
        raise InputError(f"file not found: {path}. Fix 'path' in the catalog.", where=where)
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(
            f"cannot be opened as a raster ({exc}). Is it truncated or not a GeoTIFF?", where
        ) from exc
    with src:
        if src.count > 1:
            log.warning("%s: %d bands; band 1 holds the class codes", where, src.count)
        dtype = src.dtypes[0]
        if dtype.startswith("complex"):
            raise InputError(f"has {dtype} pixels; class codes must be integers", where)
        try:
            if crs_override:
                crs = CRS.from_user_input(crs_override)
            elif src.crs:
                crs = CRS.from_wkt(src.crs.to_wkt())
            else:
                raise InputError(
                    "carries no CRS; add e.g. the RESDC Albers definition as 'crs:' to its "
                    "catalog entry.",
                    where,
                )
        except CRSError as exc:
            raise InputError(f"its CRS is not one pyproj understands ({exc})", where) from exc
        if crs.is_bound:
            crs = crs.source_crs
        if crs.is_compound:
            crs = crs.sub_crs_list[0]
        if src.transform.is_identity:
            raise InputError("has no georeferencing (identity transform)", where)
        _check_blocks(src, path, where)
        tile = src.block_shapes[0]
        return Grid(
            year=year,
            path=path,
            crs=crs,
            transform=src.transform,
            width=src.width,
            height=src.height,
            dtype=dtype,
            nodata=src.nodata,
            tile=(int(tile[0]), int(tile[1])),
            unit_m=float(crs.axis_info[0].unit_conversion_factor or 1.0),
        )


def _check_blocks(src: rasterio.DatasetReader, path: Path, where: str) -> None:
    """A truncated GeoTIFF opens fine and fails only when a missing block is read: compare every
    block's offset + size (TIFF tags, no pixels read) with the file's size."""
    if src.driver != "GTiff":
        return
    size = path.stat().st_size
    bh, bw = src.block_shapes[0]
    for by in range(-(-src.height // bh)):
        for bx in range(-(-src.width // bw)):
            off = src.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=1)
            n = src.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=1)
            if off is None or n is None:
                return  # the driver does not expose its blocks (e.g. a COG over HTTP)
            if int(off) + int(n) > size:
                raise InputError(
                    f"is truncated: block ({bx}, {by}) ends at byte {int(off) + int(n):,} but the "
                    f"file has {size:,} bytes. Copy or export it again.",
                    where,
                )


def describe_grid(g: Grid) -> str:
    t = g.transform
    return f"{g.width} × {g.height} px of {t.a:g} × {-t.e:g} at ({t.c:g}, {t.f:g}) in {g.crs.name}"
