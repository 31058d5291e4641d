"""Styles, field aliases and a QGIS project written into ``eco_vouchers.gpkg``.

One public function, :func:`style_geopackage`, called by the export stage on the finished temporary
GeoPackage before it is renamed into place. It uses only :mod:`sqlite3` and writes:

- ``layer_styles`` (QGIS' own table, registered in ``gpkg_contents`` as ``attributes``): one row per
  style, from the ``.qml`` files in ``pipeline/output/styles/``. ``county_vouchers`` opens with a diverging
  graduated style on ``voucher_ha`` (demand red, supply blue, near-zero neutral); named alternatives
  show M_0, M_t, the static voucher and the role. Class bounds are computed here from the data, so
  every feature falls in a class. QGIS ignores a row whose ``f_table_schema`` is not ``''`` or whose
  ``f_geometry_column`` differs from the layer's, so both are written exactly (QGIS ignores a style row otherwise).
- field aliases in Chinese with units and English descriptions, in the GeoPackage schema extension
  (``gpkg_data_columns``: ``name`` = Chinese alias, ``title`` and ``description`` = English
  description) and in each style's QML ``<aliases>``. QGIS 3.22 with GDAL 3.6 does not read the
  schema extension: there the aliases come from the default style, which is also written for the
  attribute tables (their ``f_geometry_column`` is ``''``, as QGIS expects).
- ``qgis_projects``: a QGIS project (``.qgz``, stored as hex as QGIS does) with every layer in a
  sensible order, its default style, and the alternative styles in the layer's style menu.

Field aliases, layer titles and class bounds come from :mod:`pipeline.output.legend`, which the
report's figures share, so the figures and the QGIS legend use the same classes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sqlite3
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from pipeline.output.legend import (
    STYLES_DIR,
    classes,
    field_aliases,
    fill_years,
    landuse_year,
    layer_title,
)
from pipeline.runtime.atomic import final_name

__all__ = ["build_styles", "project_qgz", "read_layers", "style_geopackage", "years_from"]

log = logging.getLogger(__name__)

QGIS_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
QGIS_VERSION = "3.22.16-Białowieża"
#: name of the project stored in the GeoPackage (and of the .qgs inside the .qgz)
PROJECT_NAME = "eco_vouchers"


@dataclass(frozen=True)
class _Style:
    table: str
    qml: str  # file in STYLES_DIR
    name: str  # styleName ({b}/{t} filled in); QGIS shows it in the style menu
    description: str
    default: bool
    classes: str | None = None  # "diverging" | "sequential" | None (fixed categories)
    columns: tuple[str, ...] = ()  # the values the class bounds are computed from
    words: tuple[str, str, str] = (
        "需求",
        "基本平衡",
        "供给",
    )  # diverging: negative, zero, positive


STYLES: tuple[_Style, ...] = (
    _Style(
        "county_vouchers",
        "county_vouchers.qml",
        "生态券 E (默认)",
        "Dynamic voucher E (voucher_ha, hm²): demand red, supply blue, near zero neutral",
        True,
        "diverging",
        ("voucher_ha",),
    ),
    _Style(
        "county_vouchers",
        "county_vouchers_sf_base.qml",
        "M_0 {b}年标准林面积",
        "Standard-forest area in the base year {b} (sf_base_ha, hm²); same classes as M_t",
        False,
        "sequential",
        ("sf_base_ha", "sf_target_ha"),
    ),
    _Style(
        "county_vouchers",
        "county_vouchers_sf_target.qml",
        "M_t {t}年标准林面积",
        "Standard-forest area in the target year {t} (sf_target_ha, hm²); same classes as M_0",
        False,
        "sequential",
        ("sf_base_ha", "sf_target_ha"),
    ),
    _Style(
        "county_vouchers",
        "county_vouchers_static.qml",
        "静态生态券 ΔM",
        "Static voucher ΔM = M_t − M_0 (static_voucher_ha, hm²): loss red, gain blue",
        False,
        "diverging",
        ("static_voucher_ha",),
        ("减少", "基本不变", "增加"),
    ),
    _Style(
        "county_vouchers",
        "county_vouchers_role.qml",
        "供需角色 role",
        "Role of each county: demand (E < 0), supply (E > 0), balanced",
        False,
    ),
    _Style(
        "landuse_change",
        "landuse_change.qml",
        "标准林变化 ΔM (默认)",
        "Change of standard forest of each changed piece (sf_change_ha, hm²): loss red, gain blue",
        True,
        "diverging",
        ("sf_change_ha",),
        ("减少", "基本不变", "增加"),
    ),
    _Style(
        "landuse_<year>",  # every layer landuse_2010, landuse_2018, … (outputs: {landuse: true})
        "landuse_year.qml",
        "{y}年土地利用 (默认)",
        "Land use of {y} clipped to the counties, by group (class_group): cropland yellow, "
        "forest dark green, grassland light green, water blue, built-up red, unused grey-brown",
        True,
    ),
    _Style(
        "trades",
        "trades.qml",
        "生态券交易 trades",
        "Voucher trades seller → buyer, line width by traded volume (volume_ha, hm²)",
        True,
        "sequential",
        ("volume_ha",),
    ),
)
_GENERIC = {
    "polygon": "generic_polygon.qml",
    "line": "generic_line.qml",
    "point": "generic_point.qml",
}

LAYER_STYLES_DDL = (
    "CREATE TABLE IF NOT EXISTS layer_styles ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), f_table_schema TEXT(256), "
    "f_table_name TEXT(256), f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, "
    "styleSLD TEXT, useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
    "update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
)
_DATA_COLUMNS_DDL = (
    "CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, "
    "column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT, "
    "constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), "
    "CONSTRAINT gdc_tn UNIQUE (table_name, name))"
)
_DATA_COLUMN_CONSTRAINTS_DDL = (
    "CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (constraint_name TEXT NOT NULL, "
    "constraint_type TEXT NOT NULL, value TEXT, min NUMERIC, min_is_inclusive BOOLEAN, "
    "max NUMERIC, max_is_inclusive BOOLEAN, description TEXT, "
    "CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))"
)
_EXTENSIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS gpkg_extensions (table_name TEXT, column_name TEXT, "
    "extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, "
    "CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name))"
)
_SCHEMA_EXTENSION = "http://www.geopackage.org/spec121/#extension_schema"


@dataclass
class _Layer:
    table: str
    geom_column: str  # '' for attribute tables
    geom_type: str  # GeoPackage geometry type name ('' for attribute tables)
    srs_id: int | None
    extent: tuple[float, float, float, float] | None
    columns: list[str]  # attribute columns in table order (no geometry column)
    fid: str | None

    @property
    def kind(self) -> str:
        g = self.geom_type.upper()
        if not g:
            return "table"
        if "POLYGON" in g or "SURFACE" in g:
            return "polygon"
        if "LINE" in g or "CURVE" in g:
            return "line"
        return "point"


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------
def style_geopackage(gpkg: Path, years: tuple[int, int] | None = None) -> None:
    """Write styles, field aliases and a QGIS project into the GeoPackage ``gpkg`` (in place).

    ``years`` = (base, target) fills the aliases (``2010年标准林面积 (hm²)``); without it they are
    read from ``class_areas`` when present. Running it twice gives the same result.
    """
    gpkg = Path(gpkg)
    con = sqlite3.connect(gpkg)
    try:
        with con:
            layers = read_layers(con)
            years = years or years_from(con, layers)
            _write_data_columns(con, layers, years)
            styles = build_styles(con, layers, years)
            _write_layer_styles(con, styles)
            qgz = project_qgz(con, layers, styles, final_name(gpkg), years)
            _write_project(con, qgz)
    finally:
        con.close()
    log.info(
        "styled %s: %d styles for %s; project %r stored",
        final_name(gpkg),  # the name it will have, not the temporary one it is written under
        len(styles),
        ", ".join(sorted({s[0].table for s in styles})),
        PROJECT_NAME,
    )


# --------------------------------------------------------------------------------------------
# Reading the GeoPackage
# --------------------------------------------------------------------------------------------
def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_layers(con: sqlite3.Connection) -> dict[str, _Layer]:
    geoms = {
        t: (c, g, s)
        for t, c, g, s in con.execute(
            "SELECT table_name, column_name, geometry_type_name, srs_id FROM gpkg_geometry_columns"
        )
    }
    out: dict[str, _Layer] = {}
    rows = con.execute(
        "SELECT table_name, data_type, min_x, min_y, max_x, max_y, srs_id FROM gpkg_contents "
        "WHERE data_type IN ('features', 'attributes') ORDER BY table_name"
    ).fetchall()
    for table, data_type, x0, y0, x1, y1, srs in rows:
        if table in ("layer_styles", "qgis_projects"):
            continue
        info = con.execute(f"PRAGMA table_info({_q(table)})").fetchall()
        if not info:
            continue
        gcol, gtype, gsrs = (
            geoms.get(table, ("", "", None)) if data_type == "features" else ("", "", None)
        )
        fid = next((r[1] for r in info if r[5]), None)
        cols = [r[1] for r in info if r[1] not in (gcol, fid)]
        extent = (x0, y0, x1, y1) if None not in (x0, y0, x1, y1) else None
        if gcol and extent is None:
            extent = _extent_from_rtree(con, table, gcol)
        out[table] = _Layer(
            table, gcol, gtype or "", gsrs if gsrs is not None else srs, extent, cols, fid
        )
    return out


def _extent_from_rtree(con: sqlite3.Connection, table: str, gcol: str):
    try:
        row = con.execute(
            f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {_q(f'rtree_{table}_{gcol}')}"
        ).fetchone()
    except sqlite3.Error:
        return None
    return tuple(row) if row and None not in row else None


def years_from(con: sqlite3.Connection, layers: dict[str, _Layer]) -> tuple[int, int] | None:
    if "class_areas" in layers and "year" in layers["class_areas"].columns:
        row = con.execute("SELECT min(year), max(year) FROM class_areas").fetchone()
        if row and row[0] is not None and row[0] != row[1]:
            return int(row[0]), int(row[1])
    return None


def _class_values(con: sqlite3.Connection, layers: dict[str, _Layer]) -> dict[str, dict]:
    """table → column → values (floats, NULL: nan) of every column a classed style reads, each
    table read with one query: a GeoPackage row holds its geometry before the attributes, so
    every query walks the geometry blobs (~0.1 s for 2,848 national counties)."""
    wanted: dict[str, list[str]] = {}
    for spec in STYLES:
        if spec.classes and spec.table in layers:
            have = wanted.setdefault(spec.table, [])
            have += [c for c in spec.columns if c in layers[spec.table].columns and c not in have]
    out = {}
    for table, names in wanted.items():
        if not names:  # none of its styles' columns: those styles are skipped with a warning
            continue
        rows = con.execute(f"SELECT {', '.join(map(_q, names))} FROM {_q(table)}").fetchall()
        data = np.array(rows, dtype=float).reshape(-1, len(names))
        out[table] = {c: data[:, i] for i, c in enumerate(names)}
    return out


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _write_data_columns(con: sqlite3.Connection, layers: dict[str, _Layer], years) -> None:
    con.execute(_DATA_COLUMNS_DDL)
    con.execute(_DATA_COLUMN_CONSTRAINTS_DDL)
    con.execute(_EXTENSIONS_DDL)
    for ext_table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
        # NULL column_name escapes UNIQUE constraints in SQLite: test for the row instead
        con.execute(
            "INSERT INTO gpkg_extensions SELECT ?, NULL, 'gpkg_schema', ?, 'read-write' WHERE NOT "
            "EXISTS (SELECT 1 FROM gpkg_extensions WHERE table_name = ? AND extension_name = "
            "'gpkg_schema')",
            (ext_table, _SCHEMA_EXTENSION, ext_table),
        )
    for layer in layers.values():
        fields = field_aliases(layer.table, layer.columns, years)
        con.execute("DELETE FROM gpkg_data_columns WHERE table_name = ?", (layer.table,))
        con.executemany(
            "INSERT INTO gpkg_data_columns (table_name, column_name, name, title, description) "
            "VALUES (?, ?, ?, ?, ?)",
            [(layer.table, col, alias, desc, desc) for col, (alias, desc) in fields.items()],
        )


def _fit_renderer(renderer: ET.Element, bounds: list[float], labels: list[str]) -> None:
    ranges = renderer.find("ranges").findall("range")
    if len(ranges) != len(labels):
        raise ValueError(f"style template has {len(ranges)} classes, {len(labels)} computed")
    for rng, lo, hi, label in zip(ranges, bounds, bounds[1:], labels):
        rng.set("lower", repr(float(lo)))
        rng.set("upper", repr(float(hi)))
        rng.set("label", label)


def _set_aliases(root: ET.Element, layer: _Layer, years) -> None:
    for old in root.findall("aliases"):
        root.remove(old)
    fields = field_aliases(layer.table, layer.columns, years)
    aliases = ET.Element("aliases")
    order = ([layer.fid] if layer.fid else []) + layer.columns  # QGIS' field order (fid first)
    for index, col in enumerate(order):
        if col in fields:
            ET.SubElement(aliases, "alias", field=col, index=str(index), name=fields[col][0])
    pos = next((i for i, el in enumerate(root) if el.tag == "layerGeometryType"), len(root))
    root.insert(pos, aliases)


def _qml_text(root: ET.Element) -> str:
    return QGIS_DOCTYPE + ET.tostring(root, encoding="unicode") + "\n"


def build_styles(con: sqlite3.Connection, layers: dict[str, _Layer], years):
    """[(style spec, QML root element)] for every layer, defaults first per layer."""
    out: list[tuple[_Style, ET.Element]] = []
    styled = set()
    class_values = _class_values(con, layers)
    for spec in _for_layers(STYLES, layers):
        layer = layers.get(spec.table)
        if layer is None or not layer.geom_column:
            continue
        if any(c not in layer.columns for c in spec.columns):
            log.warning(
                "layer %s has no column %s: style %r skipped",
                spec.table,
                "/".join(spec.columns),
                spec.qml,
            )
            continue
        root = ET.parse(STYLES_DIR / spec.qml).getroot()
        if spec.classes:
            renderer = root.find("renderer-v2")
            n = len(renderer.find("ranges").findall("range"))
            values = np.concatenate([class_values[spec.table][c] for c in spec.columns])
            bounds, labels = classes(spec.classes, values, n, spec.words)
            _fit_renderer(renderer, bounds, labels)
        _set_aliases(root, layer, years)
        named = replace(
            spec,
            name=fill_years(spec.name, years),
            description=fill_years(spec.description, years),
        )
        out.append((named, root))
        styled.add(spec.table)
    for layer in layers.values():
        if layer.table in styled:
            continue
        qml = _GENERIC.get(layer.kind, "attribute_table.qml")
        if layer.kind != "table":
            log.info(
                "layer %s has no style of its own: a plain %s style is used",
                layer.table,
                layer.kind,
            )
        root = ET.parse(STYLES_DIR / qml).getroot()
        _set_aliases(root, layer, years)
        title = layer_title(layer.table)
        out.append((_Style(layer.table, qml, title, f"Default style of {layer.table}", True), root))
    return out


def _for_layers(specs: tuple[_Style, ...], layers: dict[str, _Layer]) -> list[_Style]:
    """The styles, the one of ``landuse_<year>`` once for every such layer (year filled in)."""
    out = []
    for spec in specs:
        if spec.table != "landuse_<year>":
            out.append(spec)
            continue
        for table in sorted(layers):
            year = landuse_year(table)
            if year is not None:
                out.append(replace(spec, table=table, name=spec.name.replace("{y}", year),
                                   description=spec.description.replace("{y}", year)))  # fmt: skip
    return out


def _write_layer_styles(con: sqlite3.Connection, styles) -> None:
    con.execute(LAYER_STYLES_DDL)
    tables = sorted({spec.table for spec, _ in styles})
    con.executemany("DELETE FROM layer_styles WHERE f_table_name = ?", [(t,) for t in tables])
    geom = {
        t: g for t, g in con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns")
    }
    con.executemany(
        "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
        "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner, ui) "
        "VALUES ('', '', ?, ?, ?, ?, '', ?, ?, 'ecovoucher', NULL)",
        [
            (
                spec.table,
                geom.get(spec.table, ""),
                spec.name,
                _qml_text(root),
                int(spec.default),
                spec.description,
            )
            for spec, root in styles
        ],
    )
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    con.execute(
        "INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, identifier, description, "
        "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', "
        "'QGIS layer styles (written by ecovoucher)', ?)",
        (now,),
    )


# --------------------------------------------------------------------------------------------
# The QGIS project
# --------------------------------------------------------------------------------------------
_WKB_NAMES = {
    "POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon",
    "MULTIPOINT": "MultiPoint", "MULTILINESTRING": "MultiLineString",
    "MULTIPOLYGON": "MultiPolygon", "GEOMETRY": "Unknown",
}  # fmt: skip
_GEOMETRY = {"polygon": "Polygon", "line": "Line", "point": "Point", "table": "No geometry"}
_KIND_ORDER = {"point": 0, "line": 1, "polygon": 2, "table": 3}


def _layer_id(table: str) -> str:
    return f"{table}_ecovoucher"


def _srs_element(con: sqlite3.Connection, srs_id: int | None) -> ET.Element:
    srs = ET.Element("spatialrefsys", nativeFormat="Wkt")
    wkt, name, org, code = "", "", "", None
    if srs_id is not None:
        row = con.execute(
            "SELECT definition, srs_name, organization, organization_coordsys_id "
            "FROM gpkg_spatial_ref_sys WHERE srs_id = ?",
            (srs_id,),
        ).fetchone()
        if row:
            wkt, name, org, code = row[0] or "", row[1] or "", row[2] or "", row[3]
    authid = f"{org.upper()}:{code}" if org and org.upper() == "EPSG" and code else ""
    for tag, text in (
        ("wkt", wkt),
        ("proj4", ""),
        ("srsid", "0"),
        ("srid", str(code) if authid else "0"),
        ("authid", authid),
        ("description", name),
        ("projectionacronym", ""),
        ("ellipsoidacronym", ""),
        ("geographicflag", "false"),
    ):
        ET.SubElement(srs, tag).text = text
    return srs


def _extent_element(tag: str, extent) -> ET.Element:
    el = ET.Element(tag)
    for name, v in zip(("xmin", "ymin", "xmax", "ymax"), extent):
        ET.SubElement(el, name).text = repr(float(v))
    return el


def _project_qgs(con, layers: dict[str, _Layer], styles, gpkg_name: str, years) -> bytes:
    by_table: dict[str, list[tuple[_Style, ET.Element]]] = {}
    for spec, root in styles:
        by_table.setdefault(spec.table, []).append((spec, root))
    # map layers on top in drawing order (points, lines, polygons), county_vouchers the main one
    # (the change map above it);
    # attribute tables in a group below
    order = sorted(
        layers.values(),
        key=lambda lyr: (
            _KIND_ORDER[lyr.kind],
            lyr.table != "trades",
            lyr.table != "landuse_change",  # the changed pieces above the counties they are in
            lyr.table != "county_vouchers",
            lyr.table,
        ),
    )
    spatial = [lyr for lyr in order if lyr.kind != "table"]
    tables = [lyr for lyr in order if lyr.kind == "table"]
    main = layers.get("county_vouchers") or (spatial[0] if spatial else None)
    main_srs = main.srs_id if main else None

    qgis = ET.Element("qgis", projectname="生态券 EcoVoucher", version=QGIS_VERSION)
    ET.SubElement(qgis, "homePath", path="")
    ET.SubElement(qgis, "title").text = "生态券 EcoVoucher"
    ET.SubElement(qgis, "autotransaction", active="0")
    ET.SubElement(qgis, "evaluateDefaultValues", active="0")
    ET.SubElement(qgis, "trust", active="0")
    ET.SubElement(qgis, "projectCrs").append(_srs_element(con, main_srs))

    def source(lyr: _Layer) -> str:
        return f"./{gpkg_name}|layername={lyr.table}"

    def tree_layer(parent: ET.Element, lyr: _Layer, checked: bool) -> None:
        el = ET.SubElement(
            parent, "layer-tree-layer", expanded="1" if lyr.kind != "table" else "0",
            providerKey="ogr", checked="Qt::Checked" if checked else "Qt::Unchecked",
            id=_layer_id(lyr.table), source=source(lyr),
            name=layer_title(lyr.table), legend_exp="",
        )  # fmt: skip
        ET.SubElement(el, "customproperties")

    tree = ET.SubElement(qgis, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    for lyr in spatial:
        tree_layer(tree, lyr, True)
    if tables:
        group = ET.SubElement(tree, "layer-tree-group", name="表格 tables", checked="Qt::Checked",
                              expanded="0")  # fmt: skip
        ET.SubElement(group, "customproperties")
        for lyr in tables:
            tree_layer(group, lyr, True)
    custom = ET.SubElement(tree, "custom-order", enabled="0")
    for lyr in order:
        ET.SubElement(custom, "item").text = _layer_id(lyr.table)

    canvas = ET.SubElement(qgis, "mapcanvas", annotationsVisible="1", name="theMapCanvas")
    ET.SubElement(canvas, "units").text = "meters"
    if main and main.extent:
        x0, y0, x1, y1 = main.extent
        dx, dy = (x1 - x0) * 0.05 or 1000.0, (y1 - y0) * 0.05 or 1000.0
        canvas.append(_extent_element("extent", (x0 - dx, y0 - dy, x1 + dx, y1 + dy)))
    ET.SubElement(canvas, "rotation").text = "0"
    ET.SubElement(canvas, "destinationsrs").append(_srs_element(con, main_srs))
    ET.SubElement(canvas, "rendermaptile").text = "0"
    ET.SubElement(canvas, "expressionContextScope")

    ET.SubElement(qgis, "legend", updateDrawingOrder="true")
    project_layers = ET.SubElement(qgis, "projectlayers")
    for lyr in order:
        ml = ET.SubElement(
            project_layers, "maplayer", type="vector", geometry=_GEOMETRY[lyr.kind],
            wkbType=_WKB_NAMES.get(lyr.geom_type.upper(), "NoGeometry") if lyr.kind != "table"
            else "NoGeometry",
            styleCategories="AllStyleCategories", hasScaleBasedVisibilityFlag="0",
            minScale="100000000", maxScale="0", autoRefreshEnabled="0", readOnly="0",
            simplifyDrawingHints="1" if lyr.kind == "polygon" else "0", simplifyDrawingTol="1",
            simplifyLocal="1", simplifyMaxScale="1", simplifyAlgorithm="0", labelsEnabled="0",
        )  # fmt: skip
        if lyr.extent:
            ml.append(_extent_element("extent", lyr.extent))
        ET.SubElement(ml, "id").text = _layer_id(lyr.table)
        ET.SubElement(ml, "datasource").text = source(lyr)
        ET.SubElement(ml, "layername").text = layer_title(lyr.table)
        if lyr.kind != "table":
            ET.SubElement(ml, "srs").append(_srs_element(con, lyr.srs_id))
        ET.SubElement(ml, "provider", encoding="UTF-8").text = "ogr"
        entries = by_table.get(lyr.table, [])
        if entries:
            default_spec, default_root = entries[0]
            manager = ET.SubElement(ml, "map-layer-style-manager", current=default_spec.name)
            ET.SubElement(manager, "map-layer-style", name=default_spec.name)
            for spec, root in entries[1:]:
                ET.SubElement(manager, "map-layer-style", name=spec.name).append(root)
            for child in default_root:
                ml.append(child)

    order_el = ET.SubElement(qgis, "layerorder")
    for lyr in order:
        ET.SubElement(order_el, "layer", id=_layer_id(lyr.table))
    props = ET.SubElement(qgis, "properties")
    paths = ET.SubElement(props, "Paths")
    ET.SubElement(paths, "Absolute", type="bool").text = "false"
    ET.SubElement(qgis, "visibility-presets")
    ET.SubElement(qgis, "transformContext")
    meta = ET.SubElement(qgis, "projectMetadata")
    ET.SubElement(meta, "identifier").text = "ecovoucher"
    ET.SubElement(meta, "title").text = "生态券 EcoVoucher"
    years_text = f"{years[0]}–{years[1]}" if years else ""
    ET.SubElement(meta, "abstract").text = (
        f"Ecological-land vouchers per county {years_text} (Gu, Tang & Wang 2022). "
        "Layer county_vouchers: default style = dynamic voucher E; further styles "
        "(M_0, M_t, static voucher, role) in the layer's Styles menu."
    )
    ET.SubElement(meta, "language").text = "zh"
    ET.indent(qgis, space=" ")
    return (QGIS_DOCTYPE + ET.tostring(qgis, encoding="unicode") + "\n").encode("utf-8")


def project_qgz(con, layers, styles, gpkg_name: str, years) -> bytes:
    """The project as .qgz bytes (a zip holding ``eco_vouchers.qgs``), byte-for-byte reproducible."""
    qgs = _project_qgs(con, layers, styles, gpkg_name, years)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(f"{PROJECT_NAME}.qgs", date_time=(2000, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, qgs)
    return buf.getvalue()


def _write_project(con: sqlite3.Connection, qgz: bytes) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS qgis_projects(name TEXT PRIMARY KEY, metadata BLOB, content BLOB)"
    )
    row = None
    with contextlib.suppress(sqlite3.Error):
        row = con.execute("SELECT text FROM summary WHERE key = 'finished_utc'").fetchone()
    when = row[0] if row and row[0] else datetime.now(timezone.utc).isoformat(timespec="seconds")
    metadata = json.dumps({"last_modified_time": when, "last_modified_user": "ecovoucher"})
    con.execute(
        "INSERT OR REPLACE INTO qgis_projects (name, metadata, content) VALUES (?, ?, ?)",
        (PROJECT_NAME, metadata, qgz.hex()),
    )
