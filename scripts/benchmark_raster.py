#!/usr/bin/env python
"""Time the raster path against exactextract and rasterstats on the same grids and counties.

Every contender runs as its own process on the same GeoTIFFs (both years) and the same county
polygons, and computes per-county, per-class areas; wall time is measured around the process
(start-up and reading the counties included) and, inside it, around the computation alone; peak
memory is the largest resident size of the process, sampled every 50 ms. The results are then
compared county by county: ``center`` with rasterstats (both pixel-centre), ``exact`` with
exactextract (both exact coverage fractions).

    scripts/benchmark_raster.py                      # the JJJ demo burned to 30 m (built if needed)
    scripts/benchmark_raster.py --demo DIR --resolution 90
    scripts/benchmark_raster.py --skip rasterstats   # contenders to leave out
    scripts/benchmark_raster.py --skip exactextract rasterstats exact center-cached

The ``geographic`` contenders run the same counties on a lon/lat (CGCS2000, EPSG:4490) copy of
the grids with the same pixel count (the Albers grid's extent in lon/lat, cut into as many
columns and rows; values by nearest neighbour, untimed): every cell then counts with its own
ellipsoidal area (issue 15), which must cost no more than 10 % over the equal-area grid.

exactextract and rasterstats are benchmark-only tools (pip install exactextract rasterstats).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import measure  # noqa: E402  (scripts/ is on the path just above)

CONTENDERS = {
    "center": "ecovoucher raster, center",
    "center-cached": "ecovoucher raster, center (county grid cached)",
    "exact": "ecovoucher raster, exact",
    "geographic": "ecovoucher raster, center, lon/lat grid (same px count)",
    "geographic-exact": "ecovoucher raster, exact, lon/lat grid (same px count)",
    "exactextract": "exactextract (unique, frac, count)",
    "rasterstats": "rasterstats zonal_stats(categorical=True)",
}


def _counties(demo: Path, crs_wkt: str):  # type: ignore[no-untyped-def]
    import pyogrio

    from pipeline.settings.config import DEFAULT_EQUAL_AREA_CRS

    gdf = pyogrio.read_dataframe(demo / "counties.gpkg", layer="counties")
    gdf = gdf.rename(columns={"adcode": "county_id"})[["county_id", "geometry"]]
    gdf["county_id"] = gdf["county_id"].astype(str)
    gdf = gdf.to_crs(DEFAULT_EQUAL_AREA_CRS)
    return gdf.set_crs(crs_wkt, allow_override=True)  # the same plane, the raster's own CRS text


def run_contender(name: str, demo: Path, years: list[int], workers: int, out: Path) -> None:
    """One contender, in this process: writes its class areas (CSV) and compute seconds (JSON)."""
    import rasterio

    rasters = {y: demo / f"lu_{y}.tif" for y in years}
    with rasterio.open(rasters[years[0]]) as src:
        crs_wkt = src.crs.to_wkt()
        px_ha = abs(src.transform.a * src.transform.e) / 1e4
    counties = _counties(demo, crs_wkt)
    if name.startswith("geographic"):
        rasters = {y: demo / f"lu_{y}_lonlat.tif" for y in years}
    t0 = time.perf_counter()
    if name.startswith("geographic"):
        from pipeline.runtime.engine import Engine
        from pipeline.zonal.raster import raster_zonal_areas

        res = raster_zonal_areas(
            counties,
            rasters,
            Engine(workers=workers, progress=False),
            transitions=tuple(years),
            border="exact" if name == "geographic-exact" else "center",
            cache_dir=out.parent / f"zones-{name}",
        )
        table = res.class_areas
    elif name in ("center", "center-cached", "exact"):
        from pipeline.runtime.engine import Engine
        from pipeline.zonal.raster import raster_zonal_areas

        border = "exact" if name == "exact" else "center"
        cache = out.parent / ("zones-cache" if name == "center-cached" else f"zones-{name}")
        if name == "center-cached":  # burn the county grid first, untimed
            raster_zonal_areas(counties, rasters, Engine(workers=workers, progress=False),
                               transitions=tuple(years), cache_dir=cache)  # fmt: skip
            t0 = time.perf_counter()
        res = raster_zonal_areas(
            counties,
            rasters,
            Engine(workers=workers, progress=False),
            transitions=tuple(years),
            border=border,
            cache_dir=cache,
        )
        table = res.class_areas
    elif name == "exactextract":
        from exactextract import exact_extract

        rows = []
        for year, path in rasters.items():
            df = exact_extract(str(path), counties, ["unique", "frac", "count"],
                               include_cols=["county_id"], output="pandas")  # fmt: skip
            for r in df.itertuples():
                for code, frac in zip(np.atleast_1d(r.unique), np.atleast_1d(r.frac)):
                    rows.append((r.county_id, year, int(code), frac * r.count * px_ha))
        table = pd.DataFrame(rows, columns=["county_id", "year", "class_code", "area_ha"])
    elif name == "rasterstats":
        from rasterstats import zonal_stats

        rows = []
        for year, path in rasters.items():
            stats = zonal_stats(counties, str(path), categorical=True, nodata=0)
            for cid, st in zip(counties["county_id"], stats):
                for code, n in st.items():
                    rows.append((cid, year, int(code), n * px_ha))
        table = pd.DataFrame(rows, columns=["county_id", "year", "class_code", "area_ha"])
    else:
        raise SystemExit(f"unknown contender {name}")
    seconds = time.perf_counter() - t0
    table.to_csv(out, index=False)
    out.with_suffix(".json").write_text(json.dumps({"seconds": seconds}))


def _lonlat_copy(src_path: Path, dst_path: Path) -> None:
    """The grid in CGCS2000 lon/lat (EPSG:4490) with as many columns and rows as the Albers
    grid, over its extent; values by nearest neighbour (for timing only)."""
    import rasterio
    from rasterio.warp import Resampling, reproject, transform_bounds

    with rasterio.open(src_path) as src:
        if dst_path.exists():
            with rasterio.open(dst_path) as done:
                if (done.width, done.height) == (src.width, src.height):
                    return
        west, south, east, north = transform_bounds(src.crs, "EPSG:4490", *src.bounds)
        transform = rasterio.transform.from_bounds(west, south, east, north, src.width,
                                                   src.height)  # fmt: skip
        profile = {**src.profile, "crs": "EPSG:4490", "transform": transform}
        with rasterio.open(dst_path, "w", **profile) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1), dst_transform=transform,
                      dst_crs="EPSG:4490", resampling=Resampling.nearest,
                      num_threads=2)  # fmt: skip


def _max_diff(a: pd.DataFrame, b: pd.DataFrame) -> float:
    keys = ["county_id", "year", "class_code"]
    a = a.astype({"county_id": str})
    b = b.astype({"county_id": str})
    m = a.merge(b, on=keys, how="outer").fillna(0.0)
    return float((m["area_ha_x"] - m["area_ha_y"]).abs().max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=ROOT / ".cache" / "demo")
    ap.add_argument("--resolution", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--years", type=int, nargs=2, default=[2010, 2018])
    ap.add_argument("--skip", nargs="*", default=[], choices=list(CONTENDERS))
    ap.add_argument("--contender", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.contender:
        run_contender(args.contender, args.demo, args.years, args.workers, args.result)
        return

    from pipeline.demo import build_demo_data
    from pipeline.demo.rasterize import burn_landuse_rasters

    if not (args.demo / "manifest.json").exists():
        print(f"building the demo data in {args.demo} first …", flush=True)
    build_demo_data(args.demo, progress=False)
    t0 = time.perf_counter()
    rasters = burn_landuse_rasters(args.demo, resolution=args.resolution)
    print(
        f"rasters ready ({time.perf_counter() - t0:.1f} s): {', '.join(map(str, rasters.values()))}"
    )
    import rasterio

    with rasterio.open(rasters[args.years[0]]) as src:
        mpx = src.width * src.height / 1e6
        print(
            f"grid {src.width} × {src.height} px = {mpx:,.0f} Mpx per year at {args.resolution:g} m"
        )

    if not {"geographic", "geographic-exact"} <= set(args.skip):
        t0 = time.perf_counter()
        for year in args.years:
            _lonlat_copy(rasters[year], args.demo / f"lu_{year}_lonlat.tif")
        print(f"lon/lat copies ready ({time.perf_counter() - t0:.1f} s)")

    tmp = Path(tempfile.mkdtemp(prefix="ecovoucher-rbench-"))
    rows, tables = [], {}
    for name, label in CONTENDERS.items():
        if name in args.skip:
            continue
        out = tmp / f"{name}.csv"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--contender", name, "--result",
               str(out), "--demo", str(args.demo), "--workers", str(args.workers),
               "--years", *map(str, args.years)]  # fmt: skip
        wall, mem = measure(cmd)
        compute = json.loads(out.with_suffix(".json").read_text())["seconds"]
        tables[name] = pd.read_csv(out, dtype={"county_id": str})
        rows.append((name, label, compute, wall, mem))
        print(f"{label:<52} {compute:7.2f} s compute {wall:7.2f} s wall {mem:7.0f} MiB", flush=True)

    print(f"\n{len(args.years)} years × {mpx:,.0f} Mpx, {args.workers} workers\n")
    print("| method | compute | process wall | peak memory | speed-up vs exactextract |")
    print("|---|---:|---:|---:|---:|")
    ref = next((r for r in rows if r[0] == "exactextract"), None)
    for _name, label, compute, wall, mem in rows:
        speed = f"{ref[2] / compute:.1f}×" if ref else "–"
        print(f"| {label} | {compute:.2f} s | {wall:.1f} s | {mem:,.0f} MiB | {speed} |")
    print()
    if "center" in tables and "rasterstats" in tables:
        d = _max_diff(tables["center"], tables["rasterstats"])
        print(f"center vs rasterstats (both pixel-centre): max |difference| {d:.6f} ha")
    if "exact" in tables and "exactextract" in tables:
        d = _max_diff(tables["exact"], tables["exactextract"])
        print(f"exact vs exactextract (both exact fractions): max |difference| {d:.6f} ha")
    for geo, eq in (("geographic", "center"), ("geographic-exact", "exact")):
        times = {r[0]: r[2] for r in rows}
        if geo in times and eq in times:
            print(f"{geo} vs {eq} (same px count, lon/lat vs equal-area): "
                  f"{times[geo] / times[eq]:.3f}× the time")  # fmt: skip
    if "center" in tables and "exact" in tables:
        d = _max_diff(tables["center"], tables["exact"])
        print(f"center vs exact (the border error of the centre rule): max {d:.2f} ha")


if __name__ == "__main__":
    main()
