"""The counties: read, codes as text, repaired, reprojected, cut to the study area; the check for
counties that overlap one another (a warning)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from pipeline.errors import InputError, Problem
from pipeline.geom.overlaps import polygon_overlaps
from pipeline.ingest.clean import clean_geometries, to_crs
from pipeline.ingest.vector import read_vector
from pipeline.settings.catalog import CountiesSource
from pipeline.settings.config import Config

log = logging.getLogger(__name__)


# --- counties ------------------------------------------------------------------------------------


def read_counties(
    src: CountiesSource, config: Config, crs: CRS, notes: list[str]
) -> tuple[gpd.GeoDataFrame, frozenset[str]]:
    """The study area's counties, and the ids of every county in the file."""
    where = f"counties ({src.path})"
    fields = {"county_id": src.id_field, "name": src.name_field}
    if src.province_field:
        fields["province"] = src.province_field
    if src.city_field:
        fields["city"] = src.city_field
    gdf = read_vector(src, list(dict.fromkeys(fields.values())), "counties", notes)
    out = gpd.GeoDataFrame(
        {k: gdf[v].to_numpy() for k, v in fields.items()}, geometry=gdf.geometry.values, crs=gdf.crs
    )
    for col in ("province", "city"):
        if col not in out:
            out[col] = None
    out["county_id"] = out["county_id"].map(id_text)
    problems = []
    blank = out["county_id"].isna() | (out["county_id"] == "")
    if blank.any():
        problems.append(
            Problem(where, f"{int(blank.sum())} counties have an empty '{src.id_field}'")
        )
    dup = out.loc[out["county_id"].duplicated(keep=False) & ~blank, "county_id"]
    if len(dup):
        ids = ", ".join(sorted(set(dup)))
        problems.append(
            Problem(
                f"{where}, field '{src.id_field}'",
                f"duplicate county ids {ids}: each county must appear once (dissolve multi-part "
                "counties into one feature).",
            )
        )
    noname = out["name"].isna() | (out["name"].astype(str).str.strip() == "")
    if noname.any():
        ids = ", ".join(out.loc[noname, "county_id"].astype(str).head(20))
        problems.append(
            Problem(f"{where}, field '{src.name_field}'", f"counties without a name: {ids}")
        )
    if problems:
        raise InputError(problems)
    all_ids = frozenset(out["county_id"].dropna())  # every county of the file, for the statistics
    out = _select_study_area(out, config, where)
    # no area in the file's own coordinates: degenerate, even if reprojecting bends it into a
    # sliver of a few m² (a zero-width county in lon/lat came out as 36 m²)
    geoms = out.geometry.values
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    flat = out.loc[present & ~(shapely.area(geoms) > 0), "county_id"]
    if len(flat):
        raise InputError(
            f"counties with no area (degenerate polygons): {listed_ids(flat)}. Fix their boundaries.",
            where,
        )
    out = to_crs(out, crs, where, notes)  # then repair: a reprojection can invalidate a ring
    out = clean_geometries(out, where, notes, empty_ids="county_id")
    out["area_m2"] = out.geometry.area
    flat = out.loc[~(out["area_m2"] > 0), "county_id"]
    if len(flat):
        raise InputError(
            f"counties with no area (degenerate polygons): {listed_ids(flat)}. Fix their boundaries.",
            where,
        )
    return out.sort_values("county_id").reset_index(drop=True), all_ids


def county_overlaps(counties: gpd.GeoDataFrame) -> pd.DataFrame:
    """Pairs of county polygons that overlap: ``first, second`` (county ids), ``area_ha``.

    Land use in such a strip counts in both counties; boundary data from other sources often has
    slivers like that. Same method as for land use: screening, then pair tests
    (:func:`pipeline.geom.overlaps.polygon_overlaps`).
    """
    pairs = pd.DataFrame(polygon_overlaps(np.asarray(counties.geometry.values)))
    if not len(pairs):
        return pairs
    ids = counties["county_id"].to_numpy()
    return pairs.assign(
        first=ids[pairs["first"].astype(int)], second=ids[pairs["second"].astype(int)]
    )


def county_overlap_notes(counties: gpd.GeoDataFrame, path: Path) -> list[str]:
    """The note (and warning) about overlapping counties, if any."""
    overlapping = county_overlaps(counties)
    if not len(overlapping):
        return []
    listing = ", ".join(
        f"{r.first} & {r.second} ({r.area_ha:,.4f} ha)" for r in overlapping.head(10).itertuples()
    )
    msg = (
        f"{len(overlapping)} pairs of counties overlap ({listing}); land use in those strips "
        "counts in both counties. Clean the boundaries if that matters."
    )
    where = f"counties ({path})"
    log.warning("%s: %s", where, msg)
    return [f"{where}: {msg}"]


def id_text(v: object) -> str | None:
    """County codes as text: 110101, 110101.0 and '110101' are the same county."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    text = str(v).strip()
    if re.fullmatch(r"\d+\.0+", text):  # "110101.0": a code that went through a float
        return text.split(".")[0]
    return text


def _select_study_area(out: gpd.GeoDataFrame, config: Config, where: str) -> gpd.GeoDataFrame:
    sa = config.study_area
    keep = np.ones(len(out), dtype=bool)
    if sa.provinces:
        available = sorted(out["province"].dropna().astype(str).unique())
        unknown = [p for p in sa.provinces if p not in set(available)]
        if unknown:
            raise InputError(
                f"study_area.provinces {unknown} match no county's province. Provinces in the "
                f"data: {', '.join(available) or 'none (no province field)'}",
                where=f"config {config.path}",
            )
        keep &= out["province"].isin(sa.provinces).to_numpy()
    if sa.county_ids:
        unknown = sorted(set(sa.county_ids) - set(out["county_id"]))
        if unknown:
            raise InputError(
                f"study_area.county_ids {', '.join(unknown[:30])} are not in {where}",
                where=f"config {config.path}",
            )
        keep &= out["county_id"].isin(sa.county_ids).to_numpy()
    if not keep.any():
        raise InputError(
            "no counties are left after the study-area filter (provinces and county_ids together)",
            where=f"config {config.path}",
        )
    return out.loc[keep]


def listed_ids(ids: pd.Series | list) -> str:
    ids = sorted({str(i) for i in ids})
    more = f" … ({len(ids)} in all)" if len(ids) > 30 else ""
    return ", ".join(ids[:30]) + more
