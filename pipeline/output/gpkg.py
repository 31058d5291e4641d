"""Stage 5 (output) — write ``eco_vouchers.gpkg`` atomically.

One public function, :func:`write_geopackage`. Layers are written to a temporary file and renamed
into place only when all of them are complete. A run writes it into its staging folder (see
:mod:`pipeline.runtime.staging`), from which the whole output is moved into the output folder at
once.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from pipeline.output.qgis import style_geopackage
from pipeline.runtime.atomic import replacing

OUTPUT_NAME = "eco_vouchers.gpkg"

#: unit of each region total in ``summary``
TOTAL_UNITS = {
    "sf_base_ha": "hm² standard forest (M_0)",
    "sf_target_ha": "hm² standard forest (M_t)",
    "static_voucher_ha": "hm² (Σ M_t − M_0)",
    "demand_ha": "hm² (Σ|E| over E < 0)",
    "supply_ha": "hm² (Σ E over E > 0)",
    "net_ha": "hm² (demand − supply)",
    "demand_value_yuan": "yuan (demand × q_t)",
    "supply_value_yuan": "yuan (supply × q_t)",
    "n_counties": "counties",
    "n_demand": "counties",
    "n_supply": "counties",
    "n_balanced": "counties",
}


def write_geopackage(
    out_dir: Path,
    layers: dict[str, pd.DataFrame | None],
    totals: dict[str, float],
    provenance: dict[str, str],
    years: tuple[int, int] | None = None,
) -> Path:
    """Write ``layers`` (GeoDataFrames as spatial layers, DataFrames as attribute tables; None
    ones skipped) and a ``summary`` table of region totals and provenance to
    ``out_dir/eco_vouchers.gpkg``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / OUTPUT_NAME
    summary = summary_table(totals, provenance)
    with replacing(final) as tmp:
        first = True
        present = [(name, df) for name, df in layers.items() if df is not None]
        for name, df in [*present, ("summary", summary)]:
            # GeoPackage 1.3: QGIS builds with GDAL < 3.7 warn about the newer 1.4 files
            kwargs = {"dataset_options": {"VERSION": "1.3"}} if first else {}
            if isinstance(df, gpd.GeoDataFrame):
                pyogrio.write_dataframe(df, tmp, layer=name, driver="GPKG", **kwargs)
            else:
                pyogrio.write_dataframe(
                    pd.DataFrame(df).reset_index(drop=True),
                    tmp,
                    layer=name,
                    driver="GPKG",
                    **kwargs,
                )
            first = False
        style_geopackage(tmp, years)  # QGIS styles, aliases and project, inside the file
    return final


def summary_table(totals: dict[str, float], provenance: dict[str, str]) -> pd.DataFrame:
    """``key, value, unit, text``: one row per region total, then one per provenance entry."""
    rows = [
        {"key": k, "value": float(v), "unit": TOTAL_UNITS.get(k, ""), "text": None}
        for k, v in totals.items()
    ]
    rows += [{"key": k, "value": None, "unit": None, "text": v} for k, v in provenance.items()]
    return pd.DataFrame(rows, columns=["key", "value", "unit", "text"])
