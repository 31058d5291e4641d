"""Stage 1 — settings (:func:`load_settings`): the YAML files as frozen, validated pydantic
models. The data catalog (:func:`load_catalog`), the run configuration with its market and
uncertainty sections and the national values (:func:`load_config`, which also loads the
coefficient table it names), and the one YAML reader and pydantic-error translator they share
(:func:`read_yaml`, :func:`parse_model`)."""

from pipeline.settings.catalog import (
    Catalog,
    CountiesSource,
    Datasets,
    LanduseSource,
    SocioSource,
    load_catalog,
)
from pipeline.settings.coefficients import Coefficients, coefficients_by_year, load_coefficients
from pipeline.settings.config import (
    BALANCED_TOLERANCE_HA,
    DEFAULT_COEFFICIENTS,
    DEFAULT_EQUAL_AREA_CRS,
    LEVELS,
    Baseline,
    Config,
    MarketConfig,
    NationalUncertainty,
    NationalValues,
    StudyArea,
    UncertaintyConfig,
    ValueRange,
    Years,
    load_config,
)
from pipeline.settings.legends import GROUPS, SHIPPED, Legend, load_legend
from pipeline.settings.load import Settings, load_settings
from pipeline.settings.parse import parse_model, read_yaml, resolve

__all__ = [
    "BALANCED_TOLERANCE_HA",
    "DEFAULT_COEFFICIENTS",
    "DEFAULT_EQUAL_AREA_CRS",
    "GROUPS",
    "LEVELS",
    "SHIPPED",
    "Baseline",
    "Catalog",
    "Coefficients",
    "Config",
    "CountiesSource",
    "Datasets",
    "LanduseSource",
    "Legend",
    "MarketConfig",
    "NationalUncertainty",
    "NationalValues",
    "Settings",
    "SocioSource",
    "StudyArea",
    "UncertaintyConfig",
    "ValueRange",
    "Years",
    "coefficients_by_year",
    "load_catalog",
    "load_coefficients",
    "load_config",
    "load_legend",
    "load_settings",
    "parse_model",
    "read_yaml",
    "resolve",
]
