"""The results people open and read: a QGIS project file, maps, tables and one HTML report.

One public function, :func:`write_report`, called after ``eco_vouchers.gpkg`` is in place. From the
GeoPackage alone it writes into ``out_dir``:

- ``eco_vouchers.qgz`` — the QGIS project stored in the GeoPackage, as a file beside it (layer
  paths relative to the project file);
- ``figures/*.png`` and ``figures/*.svg`` — maps like the paper's Figures 2 and 3: standard-forest
  area per county in the base and target year side by side, its change, and the vouchers (demand
  red, supply blue), each with legend, scale bar, north arrow and Chinese labels. The classes are
  the ones of the QGIS styles (:mod:`pipeline.output.qgis`), so map and project agree;
- ``tables/*.csv`` (UTF-8 with BOM, which Excel opens correctly) and ``eco_vouchers_tables.xlsx``;
- ``report.html`` — one self-contained file: region totals, the figures (embedded), top-10 demand
  and supply counties, land-use structure and transfers, the method and coefficients used, and the
  run's provenance.

Chinese text needs a CJK font: the Noto Sans CJK SC font shipped in the ``mplfonts`` package is
loaded by file path (no system font is needed); without it a CJK font found on the system is used,
and failing that a warning says the labels will not render.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import importlib.util
import io
import json
import logging
import math
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import yaml

from pipeline.codes import RESDC_CLASSES
from pipeline.geom.rings import Rings
from pipeline.output import legend as lgd
from pipeline.output import qgis
from pipeline.output.xlsx import write_xlsx
from pipeline.runtime.atomic import PARTIAL_PREFIX
from pipeline.runtime.engine import in_background

log = logging.getLogger(__name__)

FIGURES, TABLES, REPORT_HTML = "figures", "tables", "report.html"
XLSX_NAME = "eco_vouchers_tables.xlsx"
#: what :func:`write_report` writes in the output folder: name → whether it is a folder
REPORT_ENTRIES = {f"{qgis.PROJECT_NAME}.qgz": False, FIGURES: True, TABLES: True,
                  XLSX_NAME: False, REPORT_HTML: False}  # fmt: skip

#: RESDC level-1 classes (code // 10)
LEVEL1 = {1: "耕地", 2: "林地", 3: "草地", 4: "水域", 5: "建设用地", 6: "未利用地"}
#: figure size in inches and resolution: PNGs are (width × DPI) × (height × DPI) pixels
DPI = 150
MAP_SIZE = (7.2, 6.4)  # one map: 1080 × 960 px
PAIR_SIZE = (10.5, 6.4)  # two maps side by side: 1575 × 960 px
#: county boundaries (points), drawn once over the fills
BOUNDARY_WIDTH = 0.15
TOP_N = 10
_CJK_FILES = (
    "NotoSansCJKsc-Regular.otf",
    "NotoSansCJK-Regular.ttc",
    "SourceHanSansSC-Regular.otf",
    "SourceHanSans-Regular.ttc",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "SimHei.ttf",
)


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

    def _cell(self, key: str, column: str) -> object | None:
        s = self.summary
        if "key" not in s or column not in s:
            return None
        hit = s.loc[s["key"] == key, column]
        return hit.iloc[0] if len(hit) and pd.notna(hit.iloc[0]) else None

    def total(self, key: str) -> float | None:
        value = self._cell(key, "value")
        return None if value is None else float(value)

    def text(self, key: str) -> str | None:
        value = self._cell(key, "text")
        return None if value is None else str(value)


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------
def write_report(gpkg: Path, out_dir: Path, maps: MapsInBackground | None = None) -> list[Path]:
    """Write the project file, figures, tables and ``report.html`` for ``gpkg`` into ``out_dir``;
    return the paths written (project, figures, tables, report last). ``maps``: the figures,
    already being drawn from the same county table (see :class:`MapsInBackground`)."""
    gpkg, out_dir = Path(gpkg), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = _read(gpkg, geometry=maps is None)  # the maps are the only use of the shapes
    written = [_write_project_file(gpkg, out_dir)]
    if maps is not None:
        figures = maps.result(out_dir / FIGURES)
    else:
        figures = _figures(data, out_dir / FIGURES)
    for png, svg, _ in figures:
        written += [png, svg]
    tables = _tables(data)
    written += _write_tables(tables, out_dir)
    report = out_dir / REPORT_HTML
    report.write_text(_html(data, figures, tables, out_dir, written), encoding="utf-8")
    written.append(report)
    log.info("report: %s and %d other files in %s", report.name, len(written) - 1, out_dir)
    return written


class MapsInBackground:
    """The three maps drawn in a thread while the run finishes its other stages (Monte Carlo and
    the GeoPackage release the GIL for most of their time, matplotlib holds it). They are drawn
    into a temporary folder and moved into ``figures/`` by :func:`write_report`;
    :meth:`discard` removes them when the run fails instead."""

    def __init__(self, counties: gpd.GeoDataFrame, years: tuple[int, int], out_dir: Path) -> None:
        self._tmp = Path(out_dir) / f"{PARTIAL_PREFIX}{os.getpid()}-figures"
        counties = counties.sort_values("county_id", kind="stable").reset_index(drop=True)
        data = _Data(Path(), counties, pd.DataFrame(), None, None, None, years, {})
        self._job = in_background(_figures, data, self._tmp, name="maps")

    @staticmethod
    def preload() -> None:
        """Import matplotlib and register the CJK font (~0.7 s, mostly holding the GIL): best
        done early, beside work that leaves the GIL free (the zonal stage), rather than when the
        maps are drawn beside the GeoPackage export, which needs the GIL too."""
        import matplotlib.backends.backend_agg
        import matplotlib.backends.backend_svg
        import matplotlib.collections
        import matplotlib.figure
        import matplotlib.patches
        import matplotlib.patheffects  # noqa: F401

        _font_families()

    def result(self, folder: Path) -> list[tuple[Path, Path, str]]:
        """Wait for the maps and move them into ``folder``; as :func:`_figures` returns them."""
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for png, svg, caption in self._job.result():
            moved = [folder / png.name, folder / svg.name]
            for src, dst in zip((png, svg), moved):
                os.replace(src, dst)
            out.append((*moved, caption))
        self.discard()
        return out

    def discard(self) -> None:
        """Wait for the drawing to stop and remove the temporary folder."""
        with contextlib.suppress(Exception):
            self._job.result()
        shutil.rmtree(self._tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _read(gpkg: Path, geometry: bool = True) -> _Data:
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
    config = {}
    cfg_text = summary.loc[summary["key"] == "config_text", "text"] if "key" in summary else []
    if len(cfg_text) and isinstance(cfg_text.iloc[0], str):
        try:
            config = yaml.safe_load(cfg_text.iloc[0]) or {}
        except yaml.YAMLError:
            config = {}
    years = None
    if isinstance(config.get("years"), dict) and {"base", "target"} <= set(config["years"]):
        years = (int(config["years"]["base"]), int(config["years"]["target"]))
    elif class_areas is not None and len(class_areas) and class_areas["year"].nunique() >= 2:
        years = (int(class_areas["year"].min()), int(class_areas["year"].max()))
    return _Data(gpkg, counties, summary, class_areas, transitions, trades, years, config)


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


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def _cjk_font() -> Path | None:
    """A CJK font file: the one shipped in ``mplfonts`` first, then any CJK font on the system."""
    spec = importlib.util.find_spec("mplfonts")  # locate without importing (it sets rcParams)
    if spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "fonts" / "NotoSansCJKsc-Regular.otf"
            if candidate.is_file():
                return candidate
    from matplotlib import font_manager

    found = {Path(p).name: Path(p) for p in font_manager.findSystemFonts()}
    for name in _CJK_FILES:
        if name in found:
            return found[name]
    log.warning(
        "no CJK font found (pip install mplfonts): Chinese labels in the figures will not render"
    )
    return None


@functools.cache
def _font_families() -> tuple[str, ...]:
    """The CJK font (registered with matplotlib once per process), then DejaVu Sans."""
    from matplotlib import font_manager

    font = _cjk_font()
    if font is None:
        return ("DejaVu Sans",)
    font_manager.fontManager.addfont(str(font))
    return (font_manager.FontProperties(fname=str(font)).get_name(), "DejaVu Sans")


def _rc() -> dict:
    return {
        "font.family": list(_font_families()),  # glyphs missing from the first come from the next
        "axes.unicode_minus": True,
        "svg.fonttype": "path",  # glyphs as outlines: the SVG renders without the font
        "svg.hashsalt": "ecovoucher",  # reproducible SVG ids
        "path.simplify": True,
    }


def _rgba(colour: str) -> tuple[float, float, float, float]:
    r, g, b, a = (int(v) for v in colour.split(","))
    return r / 255, g / 255, b / 255, a / 255


def _paths(geoms: np.ndarray):
    """matplotlib Paths of (multi)polygons, holes included: exteriors counter-clockwise, holes
    clockwise. Built from the flat coordinate arrays (:class:`~pipeline.geom.rings.Rings`), not ring
    by ring in Python."""
    from matplotlib.path import Path as MPath

    rings = Rings.of(shapely.orient_polygons(np.asarray(geoms)))
    size = np.diff(rings.ring_off)
    codes = np.full(len(rings.x), MPath.LINETO, dtype=np.uint8)
    codes[rings.ring_off[:-1][size > 0]] = MPath.MOVETO
    codes[rings.ring_off[1:][size > 0] - 1] = MPath.CLOSEPOLY
    verts = np.column_stack([rings.x, rings.y])
    drawn = np.repeat(size >= 3, size)  # a ring needs three points
    out = []
    for g in range(len(rings.geom_rings) - 1):
        a, b = rings.ring_off[rings.geom_rings[g]], rings.ring_off[rings.geom_rings[g + 1]]
        keep = drawn[a:b]
        if keep.any():
            out.append(MPath(verts[a:b][keep], codes[a:b][keep]))
        else:
            out.append(MPath(np.zeros((1, 2)), np.array([MPath.MOVETO], dtype=np.uint8)))
    return out


def _by_colour(paths: list, colours: list) -> tuple[list, list]:
    """One compound path per colour: the renderers then handle a few paths instead of one per
    county (the SVG of a national map: 1.1 → 0.1 s). Counties do not overlap, and rings are
    oriented (exteriors counter-clockwise, holes clockwise, see :func:`_paths`), so an enclave of
    the same colour inside a hole is filled under either fill rule."""
    groups: dict[tuple, list] = {}
    for path, colour in zip(paths, colours):
        groups.setdefault(tuple(colour), []).append(path)
    return [_merged(members) for members in groups.values()], list(groups)


def _merged(paths: list):
    """One compound matplotlib Path of ``paths``."""
    from matplotlib.path import Path as MPath

    return MPath(
        np.concatenate([p.vertices for p in paths]), np.concatenate([p.codes for p in paths])
    )


def _classify(values: np.ndarray, bounds: list[float]) -> np.ndarray:
    """Class index of each value, as QGIS does: the first class with lower ≤ v ≤ upper."""
    idx = np.searchsorted(np.asarray(bounds[1:-1]), values, side="left")
    idx = np.clip(idx, 0, len(bounds) - 2)
    return np.where(np.isfinite(values), idx, -1)


def _nice_km(width_m: float) -> float:
    target = width_m / 1000 / 4
    exp = math.floor(math.log10(target)) if target > 0 else 0
    for f in (5, 2, 1):
        if f * 10**exp <= target:
            return f * 10**exp
    return 10**exp


def _scale_bar(ax, extent) -> None:
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = extent
    w, h = x1 - x0, y1 - y0
    km = _nice_km(w)
    length = km * 1000
    bx, by, bh = x0 + 0.04 * w, y0 + 0.045 * h, 0.012 * h
    for i in range(2):
        ax.add_patch(
            Rectangle(
                (bx + i * length / 2, by),
                length / 2,
                bh,
                facecolor="black" if i == 0 else "white",
                edgecolor="black",
                lw=0.6,
                zorder=5,
            )
        )
    for frac in (0, 0.5, 1):
        ax.text(bx + frac * length, by + bh * 1.6, f"{km * frac:g}", ha="center", va="bottom",
                fontsize=7, zorder=5)  # fmt: skip
    ax.text(bx + length * 1.04, by + bh / 2, "km", ha="left", va="center", fontsize=7, zorder=5)


def _north_angle(crs, extent) -> float:
    """Angle (radians, counter-clockwise from the map's up) of true north at the map centre."""
    try:
        from pyproj import Transformer

        x = (extent[0] + extent[2]) / 2
        y = (extent[1] + extent[3]) / 2
        to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        to_xy = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        lon, lat = to_ll.transform(x, y)
        nx, ny = to_xy.transform(lon, min(lat + 0.1, 89.9))
        return math.atan2(-(nx - x), ny - y)
    except Exception:  # no CRS or a geographic one: north is up
        return 0.0


def _north_arrow(ax, angle: float) -> None:
    from matplotlib.patches import Polygon

    cx, cy, r = 0.93, 0.86, 0.045
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    left = np.array([[0, r], [-0.6 * r, -0.7 * r], [0, -0.35 * r]]) @ rot.T + [cx, cy]
    right = np.array([[0, r], [0.6 * r, -0.7 * r], [0, -0.35 * r]]) @ rot.T + [cx, cy]
    for pts, fc in ((left, "black"), (right, "white")):
        ax.add_patch(Polygon(pts, closed=True, transform=ax.transAxes, facecolor=fc,
                             edgecolor="black", lw=0.7, zorder=6))  # fmt: skip
    tip = np.array([0, r * 1.45]) @ rot.T + [cx, cy]
    ax.text(tip[0], tip[1], "北\nN", transform=ax.transAxes, ha="center", va="bottom",
            fontsize=8, linespacing=0.95, zorder=6)  # fmt: skip


def _draw_map(ax, paths, colours, extent, north, title, legend, legend_title) -> None:
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Patch

    fills, colours = _by_colour(paths, colours)
    # the limits are set below: matplotlib need not scan every vertex for them (autolim)
    ax.add_collection(PathCollection(fills, facecolors=colours, edgecolors="none"), autolim=False)
    ax.add_collection(
        PathCollection(
            [_merged(paths)],  # every boundary once, on top
            facecolors="none",
            edgecolors=(0.35, 0.35, 0.35, 1),
            linewidths=BOUNDARY_WIDTH,
        ),
        autolim=False,
    )
    x0, y0, x1, y1 = extent
    w, h = x1 - x0, y1 - y0
    # room below for the scale bar, right for the legend
    ax.set_xlim(x0 - 0.04 * w, x1 + 0.04 * w)
    ax.set_ylim(y0 - 0.14 * h, y1 + 0.06 * h)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=12, pad=6)
    frame = ax.get_xlim()[0], ax.get_ylim()[0], ax.get_xlim()[1], ax.get_ylim()[1]
    _scale_bar(ax, frame)
    _north_arrow(ax, north)
    if not legend:
        return
    handles = [
        Patch(facecolor=c, edgecolor=(0.35, 0.35, 0.35), lw=0.4, label=lab) for c, lab in legend
    ]
    ax.legend(handles=handles, title=legend_title, loc="lower right", fontsize=7,
              title_fontsize=8, frameon=True, framealpha=0.9, borderaxespad=0.3)  # fmt: skip


def _label_counties(ax, gdf: gpd.GeoDataFrame, rows: pd.DataFrame) -> None:
    import matplotlib.patheffects as pe

    pts = gdf.loc[rows.index].geometry.representative_point()
    for (_, row), pt in zip(rows.iterrows(), pts):
        ax.text(pt.x, pt.y, str(row["name"]), fontsize=6.5, ha="center", va="center", zorder=7,
                path_effects=[pe.withStroke(linewidth=1.8, foreground="white")])  # fmt: skip


def _figures(data: _Data, folder: Path) -> list[tuple[Path, Path, str]]:
    """[(png, svg, caption)] of the three maps."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    gdf = data.counties
    crs = gdf.crs
    bounds = gdf.total_bounds
    extent = tuple(float(v) for v in bounds)
    north = _north_angle(crs, extent)  # the same for every map
    # simplify for drawing: a tolerance of 1/2000 of the map's width is below one pixel; topology
    # need not be kept for a picture (keeping it costs ~10× for national runs)
    tol = max(extent[2] - extent[0], extent[3] - extent[1]) / 2000
    paths = _paths(shapely.simplify(gdf.geometry.values, tol, preserve_topology=False))

    seq_colours = [_rgba(c) for c in lgd.qml_colours("county_vouchers_sf_base.qml")]
    div_colours = [_rgba(c) for c in lgd.qml_colours("county_vouchers.qml")]
    m0 = gdf["sf_base_ha"].to_numpy(float)
    mt = gdf["sf_target_ha"].to_numpy(float)
    dm = gdf["static_voucher_ha"].to_numpy(float)
    e = gdf["voucher_ha"].to_numpy(float)
    seq_bounds, seq_labels = lgd.classes("sequential", np.concatenate([m0, mt]),
                                              len(seq_colours), ("", "", ""))  # fmt: skip
    dm_bounds, dm_labels = lgd.classes("diverging", dm, 7, ("减少", "基本不变", "增加"))
    e_bounds, e_labels = lgd.classes("diverging", e, 7, ("需求", "基本平衡", "供给"))
    nodata = (0.85, 0.85, 0.85, 1.0)

    def colours(values, bnds, palette):
        idx = _classify(values, bnds)
        return [palette[i] if i >= 0 else nodata for i in idx]

    out = []
    with rc_context(_rc()):
        # Figure 2 (paper): standard forest in the base and the target year, one legend
        fig = Figure(figsize=PAIR_SIZE, dpi=DPI)
        axes = [fig.add_axes((0.01, 0.02, 0.485, 0.88)), fig.add_axes((0.505, 0.02, 0.485, 0.88))]
        legend = list(zip(seq_colours, seq_labels))
        for ax, values, year, lg in ((axes[0], m0, data.y0, None), (axes[1], mt, data.yt, legend)):
            _draw_map(ax, paths, colours(values, seq_bounds, seq_colours), extent, north,
                      f"{year}年标准林面积", lg, "标准林面积 (hm²)")  # fmt: skip
        fig.suptitle(
            f"县域标准林面积 $M_0$ 与 $M_t$（{data.y0}年、{data.yt}年）", fontsize=14, y=0.975
        )
        out.append(_save(fig, folder / "standard_forest",
                         f"图1 {data.y0}年与{data.yt}年县域标准林面积 (hm²)，两图分级相同。"))  # fmt: skip

        fig = Figure(figsize=MAP_SIZE, dpi=DPI)
        ax = fig.add_axes((0.01, 0.02, 0.98, 0.9))
        _draw_map(ax, paths, colours(dm, dm_bounds, div_colours), extent, north,
                  f"标准林面积变化 $\\Delta M = M_t - M_0$（{data.y0}–{data.yt}年）",
                  list(zip(div_colours, dm_labels)), "ΔM (hm²)")  # fmt: skip
        out.append(_save(fig, folder / "standard_forest_change",
                         f"图2 {data.y0}–{data.yt}年县域标准林面积变化（静态生态券 ΔM，hm²）："
                         "红色减少，蓝色增加。"))  # fmt: skip

        fig = Figure(figsize=MAP_SIZE, dpi=DPI)
        ax = fig.add_axes((0.01, 0.02, 0.98, 0.9))
        _draw_map(ax, paths, colours(e, e_bounds, div_colours), extent, north,
                  f"生态券供需分布（动态生态券 E，{data.yt}年）",
                  list(zip(div_colours, e_labels)), "生态券 E (hm²)")  # fmt: skip
        order = gdf.assign(_e=e).sort_values(["_e", "county_id"], kind="stable")
        top = pd.concat([order[order["_e"] < 0].head(5), order[order["_e"] > 0].tail(5)])
        _label_counties(ax, gdf, top)
        out.append(_save(fig, folder / "vouchers",
                         "图3 县域生态券供需：红色为需求方（E < 0，需购买生态券），蓝色为供给方"
                         "（E > 0，可出售）；标注需求与供给最大的各5个县。"))  # fmt: skip
    return out


def _save(fig, stem: Path, caption: str) -> tuple[Path, Path, str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg, caption


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def _alias(table: str, col: str, data: _Data) -> str:
    fields = lgd.FIELDS.get(table, {})
    if col not in fields:
        return col
    years = data.years
    return f"{lgd.fill_years(fields[col][0], years)} [{col}]"


def _tables(data: _Data) -> dict[str, pd.DataFrame]:
    """Named tables for CSV, XLSX and the HTML report (Chinese headers with the column names)."""
    gdf = data.counties
    cols = [c for c in lgd.FIELDS["county_vouchers"] if c in gdf.columns]
    cols += [c for c in gdf.columns if c not in cols and c != "geometry"]
    county = pd.DataFrame(gdf[cols]).rename(columns=lambda c: _alias("county_vouchers", c, data))
    out = {"county_vouchers": county, "region_totals": _totals_table(data)}

    order = gdf.sort_values(["voucher_ha", "county_id"], kind="stable")
    show = ["county_id", "name", "province", "city", "voucher_ha", "static_voucher_ha",
            "gdp_coef", "pop_coef", "value_yuan"]  # fmt: skip
    demand = order[order["voucher_ha"] < 0].head(TOP_N)
    supply = order[order["voucher_ha"] > 0].iloc[::-1].head(TOP_N)
    for name, df in (("top10_demand", demand), ("top10_supply", supply)):
        t = pd.DataFrame(df[show]).reset_index(drop=True)
        t.insert(0, "rank", range(1, len(t) + 1))
        out[name] = t.rename(
            columns=lambda c: "名次 [rank]" if c == "rank" else _alias("county_vouchers", c, data)
        )

    if data.class_areas is not None and len(data.class_areas):
        out["land_use_by_class"] = _land_use_table(data)
    if data.transitions is not None and len(data.transitions):
        out["transitions_by_class"] = _transition_matrix(data)
    out["coefficients"] = _coefficient_table(data)
    return out


_TOTALS = (
    ("sf_base_ha", "{b}年标准林面积 M₀", "hm²"),
    ("sf_target_ha", "{t}年标准林面积 Mₜ", "hm²"),
    ("static_voucher_ha", "标准林面积变化 ΔM", "hm²"),
    ("demand_ha", "生态券需求量 Σ|E| (E < 0)", "hm²"),
    ("supply_ha", "生态券供给量 Σ E (E > 0)", "hm²"),
    ("net_ha", "净需求 = 需求 − 供给", "hm²"),
    ("demand_value_yuan", "需求价值 (需求 × q_t)", "元"),
    ("supply_value_yuan", "供给价值 (供给 × q_t)", "元"),
    ("n_counties", "县级单元数", "个"),
    ("n_demand", "需求方县数", "个"),
    ("n_supply", "供给方县数", "个"),
    ("n_balanced", "平衡县数", "个"),
)


def _totals_table(data: _Data) -> pd.DataFrame:
    gdf = data.counties
    e = gdf["voucher_ha"].to_numpy(float)
    fallback = {
        "sf_base_ha": gdf["sf_base_ha"].sum(),
        "sf_target_ha": gdf["sf_target_ha"].sum(),
        "static_voucher_ha": gdf["static_voucher_ha"].sum(),
        "demand_ha": -e[e < 0].sum(),
        "supply_ha": e[e > 0].sum(),
        "net_ha": -e[e < 0].sum() - e[e > 0].sum(),
        "n_counties": len(gdf),
        "n_demand": int((gdf["role"] == "demand").sum()),
        "n_supply": int((gdf["role"] == "supply").sum()),
        "n_balanced": int((gdf["role"] == "balanced").sum()),
    }
    rows = []
    for key, label, unit in _TOTALS:
        value = data.total(key)
        if value is None:
            value = fallback.get(key)
        if value is None:
            continue
        value = float(value)
        ten_k = value / 1e4 if unit == "hm²" else (value / 1e8 if unit == "元" else None)
        rows.append(
            {
                "指标 [key]": key,
                "名称": lgd.fill_years(label, data.years),
                "数值 [value]": value,
                "单位 [unit]": unit,
                "万 hm² / 亿元": ten_k,
            }
        )
    return pd.DataFrame(rows)


def _class_name(code: int) -> str:
    return RESDC_CLASSES.get(int(code), str(code))


def _other_legends(data: _Data) -> bool:
    """Whether the run's land use uses a legend other than RESDC (then tables say which)."""
    ca = data.class_areas
    return ca is not None and "legend" in ca.columns and set(ca["legend"].dropna()) != {"resdc"}


def _legend_k(data: _Data) -> dict[str, dict[str, float]]:
    """k per legend and code (codes as text), from the run's provenance."""
    text = data.text("coefficients_by_legend")
    if text:
        try:
            return json.loads(text)
        except ValueError:
            return {}
    return {"resdc": {str(c): v for c, v in _coefficients(data).items()}}


def _class_info(tag: str, code: object) -> tuple[str, str]:
    """(name, 一级类) of a class of a shipped legend; ("", "") for a legend of the user's own."""
    from pipeline.settings.legends import GROUP_NAMES_ZH, SHIPPED, load_legend

    if tag not in SHIPPED:
        return "", ""
    legend = load_legend(tag)
    cls = legend.classes.get(str(code) if legend.text else int(code))
    if cls is None:
        return "", ""
    return (cls.name_zh or cls.name), GROUP_NAMES_ZH[cls.group]


def _land_use_table_by_legend(data: _Data) -> pd.DataFrame:
    """The land-use table when a legend other than RESDC is used: one row per legend and code."""
    ca = data.class_areas.assign(class_code=lambda d: d["class_code"].astype(str))
    lk = _legend_k(data)
    pivot = ca.pivot_table(
        index=["legend", "class_code"], columns="year", values="area_ha", aggfunc="sum"
    ).fillna(0.0)
    years = sorted(pivot.columns)
    y0, yt = data.years if data.years else (years[0], years[-1])
    t = pd.DataFrame(
        {
            "图例 [legend]": pivot.index.get_level_values(0),
            "代码 [class_code]": pivot.index.get_level_values(1),
        }
    )
    info = [_class_info(tag, c) for tag, c in pivot.index]
    t["类型"] = [i[0] for i in info]
    t["一级类"] = [i[1] for i in info]
    t["标准林系数 k"] = [lk.get(tag, {}).get(c, 0.0) for tag, c in pivot.index]
    a0 = pivot[y0].to_numpy() if y0 in pivot else np.zeros(len(pivot))
    at = pivot[yt].to_numpy() if yt in pivot else np.zeros(len(pivot))
    t[f"{y0}年面积 (hm²)"] = a0
    t[f"{yt}年面积 (hm²)"] = at
    t[f"{y0}年标准林 (hm²)"] = a0 * t["标准林系数 k"].to_numpy()
    t[f"{yt}年标准林 (hm²)"] = at * t["标准林系数 k"].to_numpy()
    return t.reset_index(drop=True)


def _land_use_table(data: _Data) -> pd.DataFrame:
    if _other_legends(data):
        return _land_use_table_by_legend(data)
    ca = data.class_areas
    k = _coefficients(data)
    pivot = ca.pivot_table(
        index="class_code", columns="year", values="area_ha", aggfunc="sum"
    ).fillna(0.0)
    years = sorted(pivot.columns)
    y0, yt = data.years if data.years else (years[0], years[-1])
    t = pd.DataFrame({"代码 [class_code]": pivot.index.astype(int)})
    t["类型"] = [_class_name(c) for c in pivot.index]
    t["一级类"] = [LEVEL1.get(int(c) // 10, "") for c in pivot.index]
    t["标准林系数 k"] = [k.get(int(c), 0.0) for c in pivot.index]
    a0 = pivot[y0].to_numpy() if y0 in pivot else np.zeros(len(pivot))
    at = pivot[yt].to_numpy() if yt in pivot else np.zeros(len(pivot))
    t[f"{y0}年面积 (hm²)"] = a0
    t[f"{yt}年面积 (hm²)"] = at
    t["变化 (hm²)"] = at - a0
    t[f"{y0}年标准林 (hm²)"] = a0 * t["标准林系数 k"].to_numpy()
    t[f"{yt}年标准林 (hm²)"] = at * t["标准林系数 k"].to_numpy()
    return t.reset_index(drop=True)


def _transition_matrix(data: _Data) -> pd.DataFrame:
    """Region-wide transfer matrix between level-1 classes (hm²): rows = base year, columns =
    target year, with row and column totals. With two legends, their classes meet only in their
    groups: the matrix is then between groups."""
    from pipeline.settings.legends import GROUP_NAMES_ZH, GROUPS

    tr = data.transitions
    if "from_legend" in tr.columns:
        f, t = tr["from_group"], tr["to_group"]
        order = [g for g in (*GROUPS, "no data") if g in set(f) | set(t)]
        label = {**GROUP_NAMES_ZH, "no data": "无数据"}
    else:
        f = tr["from_code"].astype(int) // 10
        t = tr["to_code"].astype(int) // 10
        order = sorted(set(f) | set(t))
        label = {c: f"{LEVEL1.get(c, str(c))}" for c in order}
    m = (
        pd.DataFrame({"f": f, "t": t, "a": tr["area_ha"].astype(float)})
        .pivot_table(index="f", columns="t", values="a", aggfunc="sum")
        .fillna(0.0)
    )
    m = m.reindex(index=order, columns=order, fill_value=0.0)
    m.index = [f"{data.y0}年 {label[c]}" for c in order]
    m.columns = [f"{data.yt}年 {label[c]}" for c in order]
    m[f"{data.y0}年合计"] = m.sum(axis=1)
    m.loc[f"{data.yt}年合计"] = m.sum(axis=0)
    m.index.name = "转出 \\ 转入 (hm²)"
    return m.reset_index()


def _coefficients(data: _Data) -> dict[int, float]:
    text = data.text("coefficients_k")
    if not text:
        return {}
    try:
        return {int(c): float(v) for c, v in json.loads(text).items()}
    except (ValueError, TypeError):
        return {}


def _coefficient_table(data: _Data) -> pd.DataFrame:
    if _other_legends(data):
        rows = [(tag, c, _class_info(tag, c)[0], v)
                for tag, ks in _legend_k(data).items() for c, v in ks.items()]  # fmt: skip
        return pd.DataFrame(rows, columns=["图例 [legend]", "代码 [class_code]", "类型",
                                           "标准林系数 k"])  # fmt: skip
    k = _coefficients(data)
    return pd.DataFrame(
        {
            "代码 [class_code]": list(k),
            "类型": [_class_name(c) for c in k],
            "标准林系数 k": list(k.values()),
        }
    )


_SHEETS = {
    "county_vouchers": "县级生态券",
    "region_totals": "区域汇总",
    "top10_demand": "需求前十",
    "top10_supply": "供给前十",
    "land_use_by_class": "土地利用结构",
    "transitions_by_class": "土地利用转移",
    "coefficients": "标准林系数",
}


def _write_tables(tables: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    folder = out_dir / TABLES
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        path = folder / f"{name}.csv"
        df.to_csv(path, index=False, encoding="utf-8-sig")
        written.append(path)
    xlsx = out_dir / XLSX_NAME
    sheets = {_SHEETS.get(name, name): df for name, df in tables.items()}
    write_xlsx(xlsx, sheets, creator="ecovoucher", title="EcoVoucher tables")
    written.append(xlsx)
    return written


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------
_CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;
max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}
h1{font-size:1.7em;border-bottom:2px solid #2166ac;padding-bottom:.2em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.9em;color:#555}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
.demand{color:#b2182b}.supply{color:#2166ac}.muted{color:#777;font-size:.85em}
"""


def _num(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v == int(v) and abs(v) >= 1e3):
        return f"{v:,.0f}".replace("-", "−")
    return f"{v:,.{digits}f}".replace("-", "−")


def _html_table(df: pd.DataFrame, digits: int = 2) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for _, row in df.iterrows():
        cells = []
        for v in row:
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                cells.append(
                    f'<td class="n">{_num(v.item() if hasattr(v, "item") else v, digits)}</td>'
                )
            else:
                cells.append(f"<td>{html.escape('' if v is None or v is pd.NA else str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html(data: _Data, figures, tables, out_dir: Path, written: list[Path]) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>生态券核算报告 EcoVoucher report {esc(data.y0)}–{esc(data.yt)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>生态券核算报告 <span class='muted'>EcoVoucher report</span></h1>",
        f"<p>{esc(data.y0)}年（基期）→ {esc(data.yt)}年（目标年），{len(data.counties)} 个县级单元。"
        f"数据：<code>{esc(data.gpkg.name)}</code>"
        + (
            f"，完成于 {esc(data.text('finished_utc') or '')} (UTC)"
            if data.text("finished_utc")
            else ""
        )
        + "。</p>",
    ]
    # 1 totals
    totals = tables["region_totals"]
    lookup = dict(zip(totals["指标 [key]"], totals["数值 [value]"]))
    if {"demand_ha", "supply_ha", "net_ha"} <= set(lookup):
        parts.append(
            "<p>区域生态券需求 "
            f"<b class='demand'>{_num(lookup['demand_ha'] / 1e4)} 万 hm²</b>，供给 "
            f"<b class='supply'>{_num(lookup['supply_ha'] / 1e4)} 万 hm²</b>，净需求 "
            f"<b>{_num(lookup['net_ha'] / 1e4)} 万 hm²</b>"
            f"（{_num(lookup['demand_ha'], 0)} / {_num(lookup['supply_ha'], 0)} / "
            f"{_num(lookup['net_ha'], 0)} hm²）。</p>"
        )
    parts += ["<h2>1 区域汇总 Region totals</h2>", _html_table(totals)]
    # 2 figures
    parts.append("<h2>2 图 Maps</h2>")
    for png, _, caption in figures:
        b64 = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{esc(caption)} <span class='muted'>(figures/{esc(png.name)}, "
            f"{esc(png.with_suffix('.svg').name)})</span></figcaption></figure>"
        )
    # 3 top-10
    parts += [
        f"<h2>3 需求与供给最大的县 Top {TOP_N} demand and supply counties</h2>",
        "<h3 class='demand'>需求方（E &lt; 0，需购买生态券）</h3>",
        _html_table(tables["top10_demand"]),
        "<h3 class='supply'>供给方（E &gt; 0，可出售生态券）</h3>",
        _html_table(tables["top10_supply"]),
    ]
    # 4 land use
    parts.append("<h2>4 土地利用 Land use</h2>")
    if "land_use_by_class" in tables:
        parts += ["<h3>各类用地面积与标准林面积 Area and standard forest by class</h3>",
                  _html_table(tables["land_use_by_class"])]  # fmt: skip
    if "transitions_by_class" in tables:
        parts += [
            f"<h3>土地利用转移矩阵（一级类，{esc(data.y0)}→{esc(data.yt)}，hm²）"
            "Land-use transfer matrix</h3>",
            _html_table(tables["transitions_by_class"], 1),
        ]
    else:
        parts.append("<p class='muted'>本次运行未输出土地利用转移表 (transitions)。</p>")
    if data.trades is not None and len(data.trades):
        tr = pd.DataFrame(data.trades.drop(columns="geometry", errors="ignore"))
        parts += ["<h3>生态券交易 Trades</h3>", _html_table(tr.head(50))]
    # 5 method
    parts += ["<h2>5 方法与系数 Method and coefficients</h2>", _method_html(data, tables)]
    # 6 provenance
    parts += ["<h2>6 数据来源与运行记录 Provenance</h2>", _provenance_html(data)]
    # files
    items = "".join(
        f"<li><code>{esc(Path(os.path.relpath(p, out_dir)).as_posix())}</code></li>"
        for p in written
    )
    parts += [
        "<h2>7 文件 Files</h2>",
        f"<p>GeoPackage <code>{esc(data.gpkg.name)}</code>（在 QGIS 中直接打开，已带默认样式；"
        "或打开 <code>eco_vouchers.qgz</code> 工程）。其他文件：</p>",
        f"<ul>{items}<li><code>report.html</code></li></ul>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _method_html(data: _Data, tables) -> str:
    esc = html.escape
    cfg = data.config
    y0, yt = data.y0, data.yt
    lines = [
        "<p>顾晓君、唐鑫、王晓（2022）国土空间规划框架下“生态券”核算方法（METHOD.md §1）：</p><ul>",
        "<li>标准林面积 M<sub>t</sub> = Σ<sub>i</sub> A<sub>i,t</sub> · k<sub>i</sub>"
        "（A<sub>i,t</sub> 为第 i 类生态用地面积，k<sub>i</sub> 为标准林系数）；</li>",
        f"<li>静态生态券 ΔM = M<sub>t</sub> − M<sub>0</sub>（{esc(y0)}→{esc(yt)}）；</li>",
        "<li>动态生态券 E = ΔM · G<sub>t</sub> · P<sub>t</sub>，G<sub>t</sub> = 县人均GDP / 全国人均GDP，"
        "P<sub>t</sub> = 县人口密度 / 全国人口密度；E &lt; 0 为需求方，E &gt; 0 为供给方；</li>",
        "<li>交易价值 Q<sub>t</sub> = E · q<sub>t</sub>；区域需求 = Σ|E|（E &lt; 0），供给 = Σ E（E &gt; 0），"
        "净需求 = 需求 − 供给。</li></ul>",
    ]
    national = cfg.get("national") or {}
    if national:
        rows = [
            {"年份": str(y), "全国人均GDP (元)": float(v.get("gdp_per_capita_yuan", np.nan)),
             "全国人口密度 (人/km²)": float(v.get("population_density_per_km2", np.nan))}
            for y, v in sorted(national.items(), key=lambda kv: str(kv[0]))
            if isinstance(v, dict)
        ]  # fmt: skip
        lines += ["<p>全国参照值 National reference values:</p>", _html_table(pd.DataFrame(rows))]
    if cfg.get("price_yuan_per_ha") is not None:
        lines.append(
            f"<p>标准林价格 q<sub>t</sub> = {_num(float(cfg['price_yuan_per_ha']), 0)} 元/hm²。</p>"
        )
    crs = data.text("equal_area_crs")
    if crs:
        lines.append(f"<p>面积在等积投影中量算 Areas in: <code>{esc(crs)}</code></p>")
    coeff = data.text("coefficients")
    lines.append(
        "<p>标准林系数 Standard-forest coefficients k"
        + (f" <span class='muted'>({esc(coeff)})</span>" if coeff else "")
        + "；表中未列的类型 k = 0：</p>"
    )
    lines.append(_html_table(tables["coefficients"]))
    return "\n".join(lines)


def _provenance_html(data: _Data) -> str:
    esc = html.escape
    s = data.summary
    if "text" not in s:
        return "<p class='muted'>summary 表中没有运行记录。</p>"
    prov = s[s["text"].notna()]
    rows = []
    long_items = []
    for _, row in prov.iterrows():
        key, text = str(row["key"]), str(row["text"])
        if key == "software":
            with contextlib.suppress(ValueError, AttributeError):
                text = ", ".join(f"{k} {v}" for k, v in json.loads(text).items())
        if "\n" in text or len(text) > 300:
            long_items.append((key, text))
        else:
            rows.append(f"<tr><th>{esc(key)}</th><td><code>{esc(text)}</code></td></tr>")
    out = f"<table><tbody>{''.join(rows)}</tbody></table>"
    for key, text in long_items:
        out += f"<h3>{esc(key)}</h3><pre>{esc(text)}</pre>"
    return out
