"""The inputs of *Validate inputs* and *Compute eco-vouchers*: a catalog and a config file, or
layers and values picked in QGIS, from which this module writes ``catalog.yaml`` and
``config.yaml`` (README, "Catalog" and "Config") so that the run can be repeated from the command
line. Layers that are plain files are named by their path; a filtered, in-memory or database
layer is first written to ``inputs/`` beside the catalog. Everything here touches layers, so it
runs in QGIS's main thread (``prepareAlgorithm``)."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from qgis.core import (
    NULL,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransformContext,
    QgsMapLayer,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
    QgsProviderRegistry,
    QgsVectorFileWriter,
    QgsWkbTypes,
)

from . import yamlout
from .i18n import tr
from .texts import LEGENDS

_SPLIT = re.compile(r"[,，、;；\s]+")


def split_list(text: str | None) -> list[str]:
    """Provinces or county codes as typed: separated by commas (also 、，；) or spaces."""
    return [item for item in _SPLIT.split(text or "") if item]


def advanced(param):
    """``param`` shown under *Advanced parameters*."""
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


def add_parameters(alg) -> None:
    """The input parameters shared by validate and run."""
    opt = {"optional": True}
    alg.addParameter(QgsProcessingParameterFile("CATALOG", tr("CATALOG"), extension="yaml", **opt))
    alg.addParameter(QgsProcessingParameterFile("CONFIG", tr("CONFIG"), extension="yaml", **opt))
    alg.addParameter(
        QgsProcessingParameterVectorLayer(
            "COUNTIES", tr("COUNTIES"), [QgsProcessing.TypeVectorPolygon], **opt
        )
    )
    for name, default in (("COUNTY_ID_FIELD", "adcode"), ("COUNTY_NAME_FIELD", "name"),
                          ("COUNTY_PROVINCE_FIELD", "province"), ("COUNTY_CITY_FIELD", "city")):  # fmt: skip
        alg.addParameter(QgsProcessingParameterField(name, tr(name), default, "COUNTIES", **opt))
    for which, year in (("BASE", 2010), ("TARGET", 2018)):
        alg.addParameter(
            QgsProcessingParameterMapLayer(
                f"LANDUSE_{which}", tr(f"LANDUSE_{which}"), None, True,
                [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeRaster],
            )
        )  # fmt: skip
        alg.addParameter(
            QgsProcessingParameterNumber(
                f"{which}_YEAR", tr(f"{which}_YEAR"), QgsProcessingParameterNumber.Integer,
                year, True, 1900, 2200,
            )
        )  # fmt: skip
        # a text, not a field parameter: QGIS 3.22 crashes when a field parameter's parent
        # layer parameter holds a raster
        alg.addParameter(
            QgsProcessingParameterString(
                f"{which}_CODE_FIELD", tr(f"{which}_CODE_FIELD"), "gridcode", False, True
            )
        )
        alg.addParameter(
            advanced(
                QgsProcessingParameterEnum(
                    f"{which}_LEGEND", tr(f"{which}_LEGEND"), list(LEGENDS), False, 0, True
                )
            )
        )
    alg.addParameter(
        QgsProcessingParameterVectorLayer("SOCIO", tr("SOCIO"), [QgsProcessing.TypeVector], **opt)
    )
    for name, default in (("SOCIO_ID_FIELD", "code"), ("SOCIO_YEAR_FIELD", "year"),
                          ("SOCIO_GDP_FIELD", "gdp"), ("SOCIO_POP_FIELD", "pop")):  # fmt: skip
        alg.addParameter(QgsProcessingParameterField(name, tr(name), default, "SOCIO", **opt))
    for name in ("GDP_SCALE", "POP_SCALE"):
        alg.addParameter(
            QgsProcessingParameterNumber(
                name, tr(name), QgsProcessingParameterNumber.Double, 1.0, True, 0.0
            )
        )
    alg.addParameter(
        QgsProcessingParameterNumber(
            "NATIONAL_GDP", tr("NATIONAL_GDP"), QgsProcessingParameterNumber.Double, None, True, 0.0
        )
    )
    alg.addParameter(
        QgsProcessingParameterNumber(
            "NATIONAL_DENSITY", tr("NATIONAL_DENSITY"), QgsProcessingParameterNumber.Double, None,
            True, 0.0,
        )
    )  # fmt: skip
    alg.addParameter(
        QgsProcessingParameterNumber(
            "PRICE", tr("PRICE"), QgsProcessingParameterNumber.Double, 50000.0, True, 0.0
        )
    )
    alg.addParameter(QgsProcessingParameterString("PROVINCES", tr("PROVINCES"), None, False, True))
    alg.addParameter(
        QgsProcessingParameterString("COUNTY_IDS", tr("COUNTY_IDS"), None, False, True)
    )
    alg.addParameter(
        advanced(
            QgsProcessingParameterFile("COEFFICIENTS", tr("COEFFICIENTS"), extension="yaml", **opt)
        )
    )
    alg.addParameter(
        advanced(
            QgsProcessingParameterVectorLayer(
                "COEFF_TABLE", tr("COEFF_TABLE"), [QgsProcessing.TypeVector], **opt
            )
        )
    )
    for name, default in (("COEFF_CODE_FIELD", "code"), ("COEFF_K_FIELD", "k")):
        alg.addParameter(
            advanced(QgsProcessingParameterField(name, tr(name), default, "COEFF_TABLE", **opt))
        )
    alg.addParameter(
        advanced(QgsProcessingParameterCrs("EQUAL_AREA_CRS", tr("EQUAL_AREA_CRS"), None, True))
    )


def _given(parameters: dict, name: str) -> bool:
    value = parameters.get(name)
    return value is not None and value != "" and value != NULL


def write_inputs(alg, parameters, context, feedback, folder: Path) -> tuple[Path, Path]:
    """The catalog and config to run: the files given, else ``folder/catalog.yaml`` and
    ``folder/config.yaml`` written from the layers and values (said in the log)."""
    paths = []
    for name, build, what in (("CATALOG", _catalog, "Data catalog"), ("CONFIG", _config, "Run configuration")):  # fmt: skip
        if _given(parameters, name):
            paths.append(Path(alg.parameterAsFile(parameters, name, context)))
            continue
        path = folder / f"{name.lower()}.yaml"
        data = build(alg, parameters, context, feedback, folder)
        folder.mkdir(parents=True, exist_ok=True)
        header = f"{what} written by the EcoVoucher QGIS plugin (README, '{name.title()}')."
        path.write_text(yamlout.dump(data, header), encoding="utf-8")
        feedback.pushInfo(tr("msg.wrote", path=str(path)))
        paths.append(path)
    return paths[0], paths[1]


def _catalog(alg, parameters, context, feedback, folder: Path) -> dict:
    missing = [
        tr(name)
        for name in (
            "COUNTIES",
            "LANDUSE_BASE",
            "LANDUSE_TARGET",
            "BASE_YEAR",
            "TARGET_YEAR",
            "SOCIO",
        )
        if not _given(parameters, name)
    ]
    if missing:
        raise QgsProcessingException(tr("msg.need_inputs", missing="; ".join(missing)))
    counties = alg.parameterAsVectorLayer(parameters, "COUNTIES", context)
    entry = _vector_source(counties, folder, "counties", feedback)
    for key, name in (("id_field", "COUNTY_ID_FIELD"), ("name_field", "COUNTY_NAME_FIELD"),
                      ("province_field", "COUNTY_PROVINCE_FIELD"), ("city_field", "COUNTY_CITY_FIELD")):  # fmt: skip
        field = alg.parameterAsString(parameters, name, context)
        if field:
            entry[key] = field
        elif key in ("province_field", "city_field"):
            entry[key] = None
    landuse = {}
    for which in ("BASE", "TARGET"):
        layer = alg.parameterAsLayer(parameters, f"LANDUSE_{which}", context)
        year = alg.parameterAsInt(parameters, f"{which}_YEAR", context)
        code_field = alg.parameterAsString(parameters, f"{which}_CODE_FIELD", context) or "gridcode"
        legend = LEGENDS[alg.parameterAsEnum(parameters, f"{which}_LEGEND", context)]
        landuse[year] = _landuse_source(layer, code_field, folder, f"landuse_{year}", feedback)
        if legend != LEGENDS[0]:
            landuse[year]["legend"] = legend
    return {
        "notes": "written by the EcoVoucher QGIS plugin from the layers picked in QGIS",
        "datasets": {
            "counties": entry,
            "landuse": landuse,
            "socioeconomic": _socio(alg, parameters, context, folder),
        },
    }


def _config(alg, parameters, context, feedback, folder: Path) -> dict:
    missing = [
        tr(name)
        for name in ("BASE_YEAR", "TARGET_YEAR", "NATIONAL_GDP", "NATIONAL_DENSITY")
        if not _given(parameters, name)
    ]
    if missing:
        raise QgsProcessingException(tr("msg.need_config", missing="; ".join(missing)))
    base = alg.parameterAsInt(parameters, "BASE_YEAR", context)
    target = alg.parameterAsInt(parameters, "TARGET_YEAR", context)
    config: dict = {}
    provinces = split_list(alg.parameterAsString(parameters, "PROVINCES", context))
    county_ids = split_list(alg.parameterAsString(parameters, "COUNTY_IDS", context))
    if provinces or county_ids:
        config["study_area"] = {}
        if provinces:
            config["study_area"]["provinces"] = provinces
        if county_ids:
            config["study_area"]["county_ids"] = county_ids
    config["years"] = {"base": base, "target": target}
    crs = alg.parameterAsCrs(parameters, "EQUAL_AREA_CRS", context)
    if _given(parameters, "EQUAL_AREA_CRS") and crs.isValid():
        config["equal_area_crs"] = _crs_text(crs)
    if _given(parameters, "COEFFICIENTS"):
        config["coefficients"] = alg.parameterAsFile(parameters, "COEFFICIENTS", context)
    elif _given(parameters, "COEFF_TABLE"):
        config["coefficients"] = _coefficients(alg, parameters, context, folder)
    config["national"] = {
        target: {
            "gdp_per_capita_yuan": alg.parameterAsDouble(parameters, "NATIONAL_GDP", context),
            "population_density_per_km2": alg.parameterAsDouble(
                parameters, "NATIONAL_DENSITY", context
            ),
        }
    }
    config["price_yuan_per_ha"] = alg.parameterAsDouble(parameters, "PRICE", context)
    return config


def _crs_text(crs: QgsCoordinateReferenceSystem) -> str:
    if crs.authid().upper().startswith("EPSG:"):
        return crs.authid()
    return crs.toWkt(QgsCoordinateReferenceSystem.WKT2_2019)


def _relative(path: Path, folder: Path) -> str:
    """A path as the catalog names it: relative when it is inside the catalog's folder."""
    try:
        return (
            Path(os.path.relpath(path, folder)).as_posix() if _inside(path, folder) else str(path)
        )
    except ValueError:  # another drive (Windows)
        return str(path)


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _vector_source(layer, folder: Path, name: str, feedback) -> dict:
    """``{path, layer, crs, encoding}`` of a vector layer: its file when it is a plain OGR file
    without a filter, else a copy written to ``inputs/<name>.gpkg``."""
    parts = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())
    path = parts.get("path") or ""
    if layer.providerType() == "ogr" and path and os.path.isfile(path) and not layer.subsetString():
        entry: dict = {"path": _relative(Path(path), folder)}
        if parts.get("layerName"):
            entry["layer"] = parts["layerName"]
        if path.lower().endswith(".shp"):
            base = os.path.splitext(path)[0]
            if not os.path.exists(base + ".prj") and layer.crs().isValid():
                entry["crs"] = _crs_text(layer.crs())
            encoding = layer.dataProvider().encoding()
            if (
                not os.path.exists(base + ".cpg")
                and encoding
                and encoding not in ("System", "UTF-8")
            ):
                entry["encoding"] = encoding
        return entry
    out = folder / "inputs" / f"{name}.gpkg"
    out.parent.mkdir(parents=True, exist_ok=True)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = name
    result = QgsVectorFileWriter.writeAsVectorFormatV3(
        layer, str(out), QgsCoordinateTransformContext(), options
    )
    if result[0] != QgsVectorFileWriter.NoError:
        raise QgsProcessingException(f"{layer.name()}: {result[1]}")
    feedback.pushInfo(tr("msg.exported", layer=layer.name(), path=str(out)))
    return {"path": _relative(out, folder), "layer": name}


def _landuse_source(layer, code_field: str, folder: Path, name: str, feedback) -> dict:
    if layer.type() == QgsMapLayer.RasterLayer:
        source = layer.source()
        if layer.providerType() != "gdal" or not os.path.isfile(source):
            raise QgsProcessingException(
                tr("msg.not_file_raster", layer=layer.name(), source=source)
            )
        entry = {"path": _relative(Path(source), folder), "format": "raster"}
        if not layer.dataProvider().crs().isValid() and layer.crs().isValid():
            entry["crs"] = _crs_text(layer.crs())
        return entry
    if (
        layer.type() != QgsMapLayer.VectorLayer
        or layer.geometryType() != QgsWkbTypes.PolygonGeometry
    ):
        raise QgsProcessingException(tr("msg.not_polygons", layer=layer.name()))
    _require_fields(layer, {"code_field": code_field})
    entry = _vector_source(layer, folder, name, feedback)
    entry["format"] = "vector"
    entry["code_field"] = code_field
    return entry


def _require_fields(layer, fields: dict[str, str]) -> None:
    """Each ``{what: field}`` must be a field of ``layer``; else an error listing its fields."""
    names = layer.fields().names()
    for what, field in fields.items():
        if field not in names:
            raise QgsProcessingException(
                tr(
                    "msg.no_field",
                    layer=layer.name(),
                    field=field,
                    what=what,
                    fields=", ".join(names),
                )
            )


def _cell(value, whole: bool = False):
    """A table cell as the CSV holds it; ``whole``: a code or year stored as 110101.0 is 110101."""
    if value is None or value == NULL:
        return ""
    if whole and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _socio(alg, parameters, context, folder: Path) -> dict:
    """The statistics table, written to ``inputs/socioeconomic.csv`` (the four fields used)."""
    layer = alg.parameterAsVectorLayer(parameters, "SOCIO", context)
    fields = {
        key: alg.parameterAsString(parameters, name, context) or default
        for key, name, default in (("id_field", "SOCIO_ID_FIELD", "code"), ("year_field", "SOCIO_YEAR_FIELD", "year"),
                                   ("gdp_field", "SOCIO_GDP_FIELD", "gdp"), ("population_field", "SOCIO_POP_FIELD", "pop"))
    }  # fmt: skip
    _require_fields(layer, fields)
    out = folder / "inputs" / "socioeconomic.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = list(fields.values())
    whole = {fields["id_field"], fields["year_field"]}
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for feature in layer.getFeatures():
            writer.writerow([_cell(feature[c], c in whole) for c in columns])
    return {
        "path": _relative(out, folder),
        **fields,
        "gdp_scale": alg.parameterAsDouble(parameters, "GDP_SCALE", context) or 1.0,
        "population_scale": alg.parameterAsDouble(parameters, "POP_SCALE", context) or 1.0,
    }


def _coefficients(alg, parameters, context, folder: Path) -> str:
    """A coefficient table (one row per class: code, k) written as ``inputs/coefficients.yaml``."""
    layer = alg.parameterAsVectorLayer(parameters, "COEFF_TABLE", context)
    code_field = alg.parameterAsString(parameters, "COEFF_CODE_FIELD", context) or "code"
    k_field = alg.parameterAsString(parameters, "COEFF_K_FIELD", context) or "k"
    _require_fields(layer, {"code": code_field, "k": k_field})
    classes = {}
    for feature in layer.getFeatures():
        code, k = _cell(feature[code_field], whole=True), _cell(feature[k_field])
        if code == "" or k == "":
            continue
        classes[code if isinstance(code, int) else str(code)] = {"k": float(k)}
    out = folder / "inputs" / "coefficients.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        yamlout.dump({"source": f"QGIS table {layer.name()}", "classes": classes},
                     "Standard-forest coefficients written by the EcoVoucher QGIS plugin."),
        encoding="utf-8",
    )  # fmt: skip
    return _relative(out, folder)
