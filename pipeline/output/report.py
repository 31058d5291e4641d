"""The results people open and read: a QGIS project file, maps, tables and one HTML report.

One public function, :func:`write_report`, called after ``eco_vouchers.gpkg`` is in place. From the
GeoPackage alone it writes into ``out_dir``:

- ``eco_vouchers.qgz`` — the QGIS project stored in the GeoPackage, as a file beside it (layer
  paths relative to the project file);
- ``figures/*.png`` and ``figures/*.svg`` — the maps (:mod:`pipeline.output.maps`), and
  ``figures/uncertainty.png`` when the Monte Carlo ran;
- ``tables/*.csv`` and ``eco_vouchers_tables.xlsx`` (:mod:`pipeline.output.tables`);
- ``report.html`` (:mod:`pipeline.output.page`, from the editable template
  ``pipeline/output/templates/report.html.j2``).

Numbers are written for people by :mod:`pipeline.numbers`; the method the report cites is
``docs/method.md``.
"""

from __future__ import annotations

import html
import io
import json
import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import yaml

from pipeline.output import legend as lgd
from pipeline.output import qgis
from pipeline.output.maps import MapsInBackground, figures, rc
from pipeline.output.page import page_context, render_html, uncertainty_figure
from pipeline.output.tables import TABLES, XLSX_NAME, display_tables, write_tables
from pipeline.settings.config import Config

__all__ = ["FIGURES", "REPORT_ENTRIES", "REPORT_HTML", "MapsInBackground", "write_report"]

log = logging.getLogger(__name__)

FIGURES, REPORT_HTML = "figures", "report.html"
#: what :func:`write_report` writes in the output folder: name → whether it is a folder
REPORT_ENTRIES = {f"{qgis.PROJECT_NAME}.qgz": False, FIGURES: True, TABLES: True,
                  XLSX_NAME: False, REPORT_HTML: False}  # fmt: skip


@dataclass
class _Data:
    gpkg: Path
    counties: gpd.GeoDataFrame
    summary: pd.DataFrame
    class_areas: pd.DataFrame | None
    transitions: pd.DataFrame | None
    trades: gpd.GeoDataFrame | None
    years: tuple[int, int] | None
    config: dict

    @property
    def y0(self) -> str:
        return str(self.years[0]) if self.years else "基期"

    @property
    def yt(self) -> str:
        return str(self.years[1]) if self.years else "目标年"

    def text(self, key: str) -> str | None:
        s = self.summary
        if "key" not in s or "text" not in s:
            return None
        hit = s.loc[s["key"] == key, "text"]
        return str(hit.iloc[0]) if len(hit) and pd.notna(hit.iloc[0]) else None

    def totals(self) -> dict[str, float]:
        """The summary's numeric entries (region totals, market, Monte Carlo)."""
        s = self.summary
        if "key" not in s or "value" not in s:
            return {}
        values = pd.to_numeric(s["value"], errors="coerce")
        return {str(k): float(v) for k, v in zip(s["key"], values) if pd.notna(v)}


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------
def write_report(
    gpkg: Path,
    out_dir: Path,
    maps: MapsInBackground | None = None,
    *,
    config: Config | None = None,
) -> list[Path]:
    """Write the project file, figures, tables and ``report.html`` for ``gpkg`` into ``out_dir``;
    return the paths written (project, figures, tables, report last). ``maps``: the figures,
    already being drawn from the same county table (see :class:`MapsInBackground`). ``config``:
    the run's configuration (years, national values, price); without it (a GeoPackage of an
    earlier run) they are read from the config text its summary keeps."""
    gpkg, out_dir = Path(gpkg), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = config.model_dump() if config is not None else None
    data = _read(gpkg, geometry=maps is None, config=settings)  # maps: the only use of shapes
    written = [_write_project_file(gpkg, out_dir)]
    if maps is not None:
        maps_drawn = maps.result(out_dir / FIGURES)
    else:
        maps_drawn = figures(data.counties, data.years, out_dir / FIGURES)
    for png, svg, _ in maps_drawn:
        written += [png, svg]
    years = (data.y0, data.yt)
    tables = display_tables(
        data.counties,
        data.totals(),
        years,
        lgd.FIELDS["county_vouchers"],
        class_areas=data.class_areas,
        transitions=data.transitions,
        trades=data.trades,
        coefficients=_coefficients(data),
        legend_k=_legend_k(data),
    )
    spread = None
    if "uncertainty" in tables:
        spread = uncertainty_figure(
            tables["uncertainty"], rc(), out_dir / FIGURES / "uncertainty.png"
        )
        if spread is not None:
            written.append(spread)
    written += write_tables(tables, out_dir)
    report = out_dir / REPORT_HTML
    files = [Path(os.path.relpath(p, out_dir)).as_posix() for p in [*written, report]]
    context = page_context(
        counties=data.counties,
        summary=data.summary,
        tables=tables,
        years=years,
        figures=maps_drawn,
        files=files,
        gpkg_name=gpkg.name,
        config=data.config,
        uncertainty_png=spread,
    )
    report.write_text(render_html(context), encoding="utf-8")
    written.append(report)
    # not the folder: during a run it is the temporary staging folder, moved into place later
    log.info("report: %s and %d other files", report.name, len(written) - 1)
    return written


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _read(gpkg: Path, geometry: bool = True, config: dict | None = None) -> _Data:
    names = {name for name, _ in pyogrio.list_layers(gpkg)}
    # Arrow: 3× faster here, the same dtypes
    counties = pyogrio.read_dataframe(
        gpkg, layer="county_vouchers", read_geometry=geometry, use_arrow=True
    )
    counties = counties.sort_values("county_id", kind="stable").reset_index(drop=True)

    def table(name: str) -> pd.DataFrame | None:
        if name not in names:
            return None
        df = pyogrio.read_dataframe(gpkg, layer=name, read_geometry=False, use_arrow=True)
        return pd.DataFrame(df.drop(columns="geometry", errors="ignore"))

    summary = table("summary")
    if summary is None:
        summary = pd.DataFrame(columns=["key", "value", "unit", "text"])
    class_areas = table("class_areas")
    transitions = table("transitions")
    trades = (
        pyogrio.read_dataframe(gpkg, layer="trades", use_arrow=True) if "trades" in names else None
    )
    if config is None:
        config = _saved_config(summary)
    years = None
    if isinstance(config.get("years"), dict) and {"base", "target"} <= set(config["years"]):
        years = (int(config["years"]["base"]), int(config["years"]["target"]))
    elif class_areas is not None and len(class_areas) and class_areas["year"].nunique() >= 2:
        years = (int(class_areas["year"].min()), int(class_areas["year"].max()))
    return _Data(gpkg, counties, summary, class_areas, transitions, trades, years, config)


def _saved_config(summary: pd.DataFrame) -> dict:
    """The config a GeoPackage of an earlier run keeps as text in its summary (provenance)."""
    config = {}
    cfg_text = summary.loc[summary["key"] == "config_text", "text"] if "key" in summary else []
    if len(cfg_text) and isinstance(cfg_text.iloc[0], str):
        try:
            config = yaml.safe_load(cfg_text.iloc[0]) or {}
        except yaml.YAMLError:
            config = {}
    return config


def _write_project_file(gpkg: Path, out_dir: Path) -> Path:
    """``out_dir/eco_vouchers.qgz``: the project stored in the GeoPackage, its layer paths made
    relative to ``out_dir`` (built afresh when the GeoPackage holds no project)."""
    con = sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True)
    try:
        try:
            row = con.execute(
                "SELECT content FROM qgis_projects WHERE name = ?", (qgis.PROJECT_NAME,)
            ).fetchone()
        except sqlite3.Error:
            row = None
        if row:
            qgz = bytes.fromhex(row[0] if isinstance(row[0], str) else row[0].decode())
        else:
            log.warning("%s holds no QGIS project (style_geopackage not run): building one", gpkg)
            layers = qgis.read_layers(con)
            years = qgis.years_from(con, layers)
            styles = qgis.build_styles(con, layers, years)
            qgz = qgis.project_qgz(con, layers, styles, gpkg.name, years)
    finally:
        con.close()
    rel = Path(os.path.relpath(gpkg.resolve(), out_dir.resolve())).as_posix()
    if rel != gpkg.name:  # the report goes somewhere else than beside the GeoPackage
        import zipfile

        with zipfile.ZipFile(io.BytesIO(qgz)) as zin:
            qgs_name = next(n for n in zin.namelist() if n.endswith(".qgs"))
            qgs = zin.read(qgs_name).decode("utf-8")
        qgs = re.sub(r"\./[^|<\"]+?\.gpkg\|", lambda _: f"{html.escape(rel)}|", qgs)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
            info = zipfile.ZipInfo(qgs_name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, qgs)
        qgz = buf.getvalue()
    path = out_dir / f"{qgis.PROJECT_NAME}.qgz"
    path.write_bytes(qgz)
    return path


def _coefficients(data: _Data) -> dict[int, float]:
    text = data.text("coefficients_k")
    if not text:
        return {}
    try:
        return {int(c): float(v) for c, v in json.loads(text).items()}
    except (ValueError, TypeError):
        return {}


def _legend_k(data: _Data) -> dict[str, dict[str, float]]:
    """k per legend and code (codes as text), from the run's provenance."""
    text = data.text("coefficients_by_legend")
    if text:
        try:
            return json.loads(text)
        except ValueError:
            return {}
    return {"resdc": {str(c): v for c, v in _coefficients(data).items()}}
