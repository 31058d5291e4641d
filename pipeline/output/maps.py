"""The report's maps: standard forest in both years, its change, and the vouchers (the paper's
Figures 2 and 3), as PNG (150 dpi) and SVG (text as outlines: no font needed to view them).

Public: :func:`figures` (draw the three maps of a county table), :class:`MapsInBackground` (the
same in a thread during a run), :func:`rc` and :func:`cjk_font` (the CJK font, shared with the HTML
page). The classes and colours are those of the QGIS styles (:mod:`pipeline.output.legend`), so map
and project agree. Each map has a legend, a scale bar and a north arrow pointing to true north in the
equal-area projection; a pair of maps shares one legend, one scale bar and one north arrow.
Province boundaries are drawn over the county boundaries. The largest demand and supply counties
are named where the label fits, with a leader line when it sits beside its county
(:mod:`pipeline.output.labels`).

Chinese text needs a CJK font: the Noto Sans CJK SC font shipped in the ``mplfonts`` package is
loaded by file path (no system font is needed); without it a CJK font found on the system is used,
and failing that a warning says the labels will not render. Drawing is matplotlib's (Agg, SVG);
the county shapes are turned into matplotlib paths from flat coordinate arrays
(:class:`~pipeline.geom.rings.Rings`), one compound path per colour.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from pipeline.geom.rings import Rings
from pipeline.output import legend as lgd
from pipeline.output.labels import draw_labels, place_labels
from pipeline.runtime.atomic import PARTIAL_PREFIX
from pipeline.runtime.engine import in_background

__all__ = ["DPI", "MapsInBackground", "cjk_font", "figures", "rc"]

log = logging.getLogger(__name__)

#: figure size in inches and resolution: PNGs are (width × DPI) × (height × DPI) pixels
DPI = 150
MAP_SIZE = (7.2, 6.4)  # one map: 1080 × 960 px
PAIR_SIZE = (10.5, 6.4)  # two maps side by side: 1575 × 960 px
#: county boundaries (points), drawn once over the fills; province boundaries over them
BOUNDARY_WIDTH = 0.15
PROVINCE_WIDTH = 0.9
#: counties without a value: mid grey with hatching, unlike any class colour
NODATA = (0.78, 0.78, 0.78, 1.0)
NODATA_HATCH = "////"
#: how many demand and supply counties are named on the voucher map (each)
LABELLED = 5
_CJK_FILES = (
    "NotoSansCJKsc-Regular.otf",
    "NotoSansCJK-Regular.ttc",
    "SourceHanSansSC-Regular.otf",
    "SourceHanSans-Regular.ttc",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "SimHei.ttf",
)


def cjk_font() -> Path | None:
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

    font = cjk_font()
    if font is None:
        return ("DejaVu Sans",)
    font_manager.fontManager.addfont(str(font))
    return (font_manager.FontProperties(fname=str(font)).get_name(), "DejaVu Sans")


def rc() -> dict:
    """matplotlib settings of every figure: the CJK font first, outlines in SVG."""
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


#: where the north arrow may go (axes fractions of its centre): upper right, else upper left
ARROW_CORNERS = ((0.93, 0.86), (0.07, 0.86))


def _arrow_corner(geoms: np.ndarray, extent) -> tuple[float, float]:
    """The corner of :data:`ARROW_CORNERS` whose arrow box covers the least county area (the
    upper right sat on Heilongjiang in a national map; the upper left is free there)."""
    x0, y0, x1, y1 = extent
    w, h = x1 - x0, y1 - y0
    # the axes limits of _draw_map: x0 − 4 % … x1 + 4 % of the width, y0 − 14 % … y1 + 6 %
    ax0, ay0, aw, ah = x0 - 0.04 * w, y0 - 0.14 * h, 1.08 * w, 1.2 * h
    # only the counties whose boxes meet an arrow box are intersected with it (a handful: on the
    # national map intersecting all 2,848 took ~1.4 s a call, simplified or not)
    b = shapely.bounds(geoms)
    covered = []
    for cx, cy in ARROW_CORNERS:
        bx0, by0 = ax0 + (cx - 0.05) * aw, ay0 + (cy - 0.06) * ah
        bx1, by1 = ax0 + (cx + 0.05) * aw, ay0 + (cy + 0.12) * ah
        near = (b[:, 0] < bx1) & (b[:, 2] > bx0) & (b[:, 1] < by1) & (b[:, 3] > by0)
        box = shapely.box(bx0, by0, bx1, by1)
        covered.append(float(shapely.area(shapely.intersection(geoms[near], box)).sum()))
    return ARROW_CORNERS[int(np.argmin(covered))]


def _north_arrow(ax, angle: float, corner: tuple[float, float] = ARROW_CORNERS[0]) -> None:
    from matplotlib.patches import Polygon

    r = 0.045
    cx, cy = corner
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    left = np.array([[0, r], [-0.6 * r, -0.7 * r], [0, -0.35 * r]]) @ rot.T + [cx, cy]
    right = np.array([[0, r], [0.6 * r, -0.7 * r], [0, -0.35 * r]]) @ rot.T + [cx, cy]
    for pts, fc in ((left, "black"), (right, "white")):
        ax.add_patch(Polygon(pts, closed=True, transform=ax.transAxes, facecolor=fc,
                             edgecolor="black", lw=0.7, zorder=6))  # fmt: skip
    tip = np.array([0, r * 1.45]) @ rot.T + [cx, cy]
    ax.text(tip[0], tip[1], "北\nN", transform=ax.transAxes, ha="center", va="bottom",
            fontsize=8, linespacing=0.95, zorder=6)  # fmt: skip


def _draw_map(
    ax,
    paths,
    colours,
    extent,
    north,
    title,
    *,
    provinces=None,
    hatched=(),
    scale=True,
    arrow=True,
    corner=ARROW_CORNERS[0],
) -> None:
    """Fill the counties, draw their boundaries once, the province boundaries over them, and
    (unless turned off, for the second map of a pair) the scale bar and the north arrow."""
    from matplotlib.collections import PathCollection

    fills, fill_colours = _by_colour(paths, colours)
    # the limits are set below: matplotlib need not scan every vertex for them (autolim)
    ax.add_collection(PathCollection(fills, facecolors=fill_colours, edgecolors="none"),
                      autolim=False)  # fmt: skip
    if len(hatched):
        ax.add_collection(
            PathCollection([_merged([paths[i] for i in hatched])], facecolors="none",
                           edgecolors=(0.45, 0.45, 0.45, 1), linewidths=0, hatch=NODATA_HATCH),
            autolim=False,
        )  # fmt: skip
    ax.add_collection(
        PathCollection(
            [_merged(paths)],  # every boundary once, on top
            facecolors="none",
            edgecolors=(0.35, 0.35, 0.35, 1),
            linewidths=BOUNDARY_WIDTH,
        ),
        autolim=False,
    )
    if provinces is not None:
        ax.add_collection(
            PathCollection([provinces], facecolors="none", edgecolors=(0.1, 0.1, 0.1, 1),
                           linewidths=PROVINCE_WIDTH),
            autolim=False,
        )  # fmt: skip
    x0, y0, x1, y1 = extent
    w, h = x1 - x0, y1 - y0
    # room below for the scale bar, right for the legend
    ax.set_xlim(x0 - 0.04 * w, x1 + 0.04 * w)
    ax.set_ylim(y0 - 0.14 * h, y1 + 0.06 * h)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=12, pad=6)
    frame = ax.get_xlim()[0], ax.get_ylim()[0], ax.get_xlim()[1], ax.get_ylim()[1]
    if scale:
        _scale_bar(ax, frame)
    if arrow:
        _north_arrow(ax, north, corner)


def _legend(where, entries, title: str, **kwargs) -> None:
    """A legend of filled boxes (colour, label[, hatch]) on an axes or a figure."""
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=e[0], edgecolor=(0.35, 0.35, 0.35), lw=0.4, label=e[1],
              hatch=e[2] if len(e) > 2 else None)
        for e in entries
    ]  # fmt: skip
    where.legend(handles=handles, title=title, fontsize=7, title_fontsize=8, frameon=True,
                 framealpha=0.9, **kwargs)  # fmt: skip


def _province_outlines(counties, tol: float):
    """One matplotlib path of the boundaries between provinces (and the study area's outline):
    the counties of each province merged (GEOS coverage union, the counties being a coverage),
    simplified to the drawing tolerance. None for a study area within one province."""
    if "province" not in counties:
        return None
    names = counties["province"].fillna("").to_numpy()
    if len(set(names)) < 2:
        return None
    geoms = counties.geometry.values
    merged = np.array([shapely.coverage_union_all(geoms[names == p]) for p in sorted(set(names))])
    lines = shapely.simplify(shapely.boundary(merged), tol, preserve_topology=False)
    coords = [np.asarray(part.coords) for line in lines
              for part in shapely.get_parts(line) if not part.is_empty]  # fmt: skip
    if not coords:
        return None
    from matplotlib.path import Path as MPath

    verts = np.concatenate(coords)
    codes = np.full(len(verts), MPath.LINETO, dtype=np.uint8)
    codes[np.cumsum([0, *[len(c) for c in coords[:-1]]])] = MPath.MOVETO
    return MPath(verts, codes)


def _labels(ax, counties, e: np.ndarray, corner: tuple[float, float]) -> int:
    """Name the LABELLED largest demand and supply counties, largest |E| first, where a label
    fits; the legend and the north arrow stay clear. Returns how many were placed."""
    order = counties.assign(_e=e).sort_values(["_e", "county_id"], kind="stable")
    top = pd.concat([order[order["_e"] < 0].head(LABELLED), order[order["_e"] > 0].tail(LABELLED)])
    top = top.assign(_a=top["_e"].abs()).sort_values("_a", ascending=False, kind="stable")
    items = [(str(n), g) for n, g in zip(top["name"], top.geometry.values)]
    # legend box (lower right), north arrow (its corner), scale bar (lower left), axes fractions
    cx, cy = corner
    avoid = [(0.6, 0.0, 1.0, 0.42), (cx - 0.07, cy - 0.1, cx + 0.07, 1.0), (0.0, 0.0, 0.36, 0.12)]
    placed = place_labels(ax, items, avoid=avoid)
    draw_labels(ax, placed)
    return len(placed)


def figures(counties, years: tuple, folder: Path) -> list[tuple[Path, Path, str]]:
    """Draw the three maps of ``counties`` (a GeoDataFrame of ``county_vouchers`` in the
    equal-area CRS) into ``folder``; [(png, svg, caption)]."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    y0, yt = (str(years[0]), str(years[1])) if years else ("基期", "目标年")
    gdf = counties
    bounds = gdf.total_bounds
    extent = tuple(float(v) for v in bounds)
    north = _north_angle(gdf.crs, extent)  # the same for every map
    # simplify for drawing: a tolerance of 1/2000 of the map's width is below one pixel; topology
    # need not be kept for a picture (keeping it costs ~10× for national runs)
    tol = max(extent[2] - extent[0], extent[3] - extent[1]) / 2000
    paths = _paths(shapely.simplify(gdf.geometry.values, tol, preserve_topology=False))
    provinces = _province_outlines(gdf, tol)
    corner = _arrow_corner(gdf.geometry.values, extent)

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

    def colours(values, bnds, palette):
        idx = _classify(values, bnds)
        return [palette[i] if i >= 0 else NODATA for i in idx], np.flatnonzero(idx < 0)

    def entries(palette, labels, *missing):
        out = list(zip(palette, labels))
        if any(len(m) for m in missing):
            out.append((NODATA, "无数据", NODATA_HATCH))
        return out

    out = []
    with rc_context(rc()):
        # Figure 2 (paper): standard forest in the base and the target year, side by side, one
        # legend, one scale bar (left map) and one north arrow (right map): same scale and CRS
        fig = Figure(figsize=PAIR_SIZE, dpi=DPI)
        axes = [fig.add_axes((0.01, 0.1, 0.485, 0.8)), fig.add_axes((0.505, 0.1, 0.485, 0.8))]
        c0, h0 = colours(m0, seq_bounds, seq_colours)
        ct, ht = colours(mt, seq_bounds, seq_colours)
        _draw_map(axes[0], paths, c0, extent, north, f"{y0}年", provinces=provinces, corner=corner,
                  hatched=h0, arrow=False)  # fmt: skip
        _draw_map(axes[1], paths, ct, extent, north, f"{yt}年", provinces=provinces, corner=corner,
                  hatched=ht, scale=False)  # fmt: skip
        _legend(fig, entries(seq_colours, seq_labels, h0, ht), "标准林面积 (hm²)",
                loc="lower center", ncol=6, bbox_to_anchor=(0.5, 0.005))  # fmt: skip
        fig.suptitle(f"县域标准林面积 $M_0$ 与 $M_t$（{y0}年、{yt}年）", fontsize=14, y=0.975)
        out.append(_save(fig, folder / "standard_forest",
                         f"图1 {y0}年与{yt}年县域标准林面积 (hm²)，两图分级相同；粗线为省界。"))  # fmt: skip

        fig = Figure(figsize=MAP_SIZE, dpi=DPI)
        ax = fig.add_axes((0.01, 0.02, 0.98, 0.9))
        cd, hd = colours(dm, dm_bounds, div_colours)
        _draw_map(ax, paths, cd, extent, north,
                  f"标准林面积变化 $\\Delta M = M_t - M_0$（{y0}–{yt}年）", provinces=provinces, corner=corner,
                  hatched=hd)  # fmt: skip
        _legend(ax, entries(div_colours, dm_labels, hd), "ΔM (hm²)", loc="lower right",
                borderaxespad=0.3)  # fmt: skip
        out.append(_save(fig, folder / "standard_forest_change",
                         f"图2 {y0}–{yt}年县域标准林面积变化（静态生态券 ΔM，hm²）："
                         "红色减少，蓝色增加；粗线为省界。"))  # fmt: skip

        fig = Figure(figsize=MAP_SIZE, dpi=DPI)
        ax = fig.add_axes((0.01, 0.02, 0.98, 0.9))
        ce, he = colours(e, e_bounds, div_colours)
        _draw_map(ax, paths, ce, extent, north, f"生态券供需分布（动态生态券 E，{yt}年）",
                  provinces=provinces, corner=corner, hatched=he)  # fmt: skip
        _legend(ax, entries(div_colours, e_labels, he), "生态券 E (hm²)", loc="lower right",
                borderaxespad=0.3)  # fmt: skip
        named = _labels(ax, gdf, e, corner)
        out.append(_save(fig, folder / "vouchers",
                         "图3 县域生态券供需：红色为需求方（E < 0，需购买生态券），蓝色为供给方"
                         f"（E > 0，可出售）；标注 |E| 最大的需求与供给县（{named} 个，"
                         "放不下的不标）；粗线为省界。"))  # fmt: skip
    return out


def _save(fig, stem: Path, caption: str) -> tuple[Path, Path, str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, dpi=DPI, metadata={"Software": None})
    fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg, caption


class MapsInBackground:
    """The three maps drawn in a thread while the run finishes its other stages (Monte Carlo and
    the GeoPackage release the GIL for most of their time, matplotlib holds it). They are drawn
    into a temporary folder and moved into ``figures/`` by :meth:`result`; :meth:`discard`
    removes them when the run fails instead."""

    def __init__(self, counties, years: tuple[int, int], out_dir: Path) -> None:
        self._tmp = Path(out_dir) / f"{PARTIAL_PREFIX}{os.getpid()}-figures"
        counties = counties.sort_values("county_id", kind="stable").reset_index(drop=True)
        self._job = in_background(figures, counties, years, self._tmp, name="maps")

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
        """Wait for the maps and move them into ``folder``; as :func:`figures` returns them."""
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
