"""The QGIS style of the change GeoTIFF ``landuse_change.tif`` (raster land use with
``outputs: {landuse_change: true}``): a sidecar ``landuse_change.qml`` that QGIS loads as the
raster's default style — a paletted (unique values) renderer, one entry per change present
(from_code · 1000 + to_code), coloured by the land-use group of the target class (the colours of the ``landuse_<year>``
layers' style) and labelled
``21 → 51 林地 → 建设用地``; 0 (unchanged or outside every county) is the file's nodata and so
transparent. Written by hand (ElementTree): QGIS itself is not a dependency.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path

from pipeline.output.legend import STYLES_DIR, qml_colours
from pipeline.settings.legends import GROUP_NAMES_ZH, Legend

__all__ = ["CHANGE_QML", "CHANGE_TIF", "write_change_style"]

#: the change GeoTIFF and its style, in the output folder
CHANGE_TIF = "landuse_change.tif"
CHANGE_QML = "landuse_change.qml"


def write_change_style(
    tif: Path,
    pairs: Iterable[tuple[int, int]],
    legends: Mapping[int, Legend],
    years: tuple[int, int],
) -> Path:
    """Write ``landuse_change.qml`` beside ``tif`` for the (from_code, to_code) ``pairs``
    present (the legends' codes); returns its path."""
    base, target = legends[years[0]], legends[years[1]]
    colours = group_colours()
    qgis = ET.Element("qgis", version="3.22.0", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(qgis, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", type="paletted", band="1", opacity="1",
                             alphaBand="-1", nodataColor="")  # fmt: skip
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for frm, to in sorted(set((int(a), int(b)) for a, b in pairs)):
        group = _group(target, to)
        label = (f"{frm} → {to} {GROUP_NAMES_ZH.get(_group(base, frm), '?')} → "
                 f"{GROUP_NAMES_ZH.get(group, '?')}")  # fmt: skip
        ET.SubElement(palette, "paletteEntry", value=str(frm * 1000 + to),
                      color=colours.get(group or "", "#808080"), alpha="255", label=label)  # fmt: skip
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(qgis, "blendMode").text = "0"
    path = tif.with_name(CHANGE_QML)
    ET.indent(qgis)
    text = ET.tostring(qgis, encoding="unicode")
    path.write_text(f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n{text}\n",
                    encoding="utf-8")  # fmt: skip
    return path


def group_colours() -> dict[str, str]:
    """Each land-use group's colour ('#rrggbb'), from the categories of the style of the
    ``landuse_<year>`` layers (``styles/landuse_year.qml``), so that both maps agree."""
    root = ET.parse(STYLES_DIR / "landuse_year.qml").getroot()
    groups = [c.get("value") for c in root.find("renderer-v2").find("categories")]
    rgb = [tuple(int(v) for v in c.split(",")[:3]) for c in qml_colours("landuse_year.qml")]
    return {g: "#{:02x}{:02x}{:02x}".format(*c) for g, c in zip(groups, rgb)}


def _group(legend: Legend, code: int) -> str | None:
    cls = legend.classes.get(code)
    return cls.group if cls is not None else None
