"""Stage 5 — output: ``eco_vouchers.gpkg`` (:func:`write_geopackage`; with raster land use and the
change map also ``landuse_change.tif``'s style, :func:`write_change_style`) with
its QGIS styles, field aliases and project (:func:`style_geopackage`; the legend — aliases,
titles, classes, colours — in :mod:`pipeline.output.legend`), then the report: the .qgz beside
it, maps, tables (CSV and .xlsx) and report.html (:func:`write_report`)."""

from pipeline.output.gpkg import OUTPUT_NAME, summary_table, write_geopackage
from pipeline.output.qgis import style_geopackage
from pipeline.output.raster_style import CHANGE_QML, CHANGE_TIF, write_change_style
from pipeline.output.report import REPORT_ENTRIES, MapsInBackground, write_report

#: every entry a run writes in its output folder: name → whether it is a folder
OUTPUT_ENTRIES = {OUTPUT_NAME: False, CHANGE_TIF: False, CHANGE_QML: False, **REPORT_ENTRIES}

__all__ = [
    "CHANGE_TIF",
    "OUTPUT_ENTRIES",
    "OUTPUT_NAME",
    "MapsInBackground",
    "style_geopackage",
    "summary_table",
    "write_change_style",
    "write_geopackage",
    "write_report",
]
