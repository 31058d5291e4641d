"""The run configuration: study area, years, CRS, coefficients, national values, price.

See docs/catalog-config.md, 'Config'. Relative paths are relative to the config file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pyproj import CRS
from pyproj.exceptions import CRSError

from pipeline.geom.crs import is_equal_area
from pipeline.settings.coefficients import Coefficients, load_coefficients
from pipeline.settings.parse import Count, Number, parse_model, read_yaml, resolve

#: Albers equal-area conic for China on the Krasovsky ellipsoid, as RESDC uses.
DEFAULT_EQUAL_AREA_CRS = (
    "+proj=aea +lat_0=0 +lat_1=25 +lat_2=47 +lon_0=105 +x_0=0 +y_0=0 +ellps=krass +units=m +no_defs"
)
#: Table 1 of Gu, Tang & Wang (2022), shipped with the package.
DEFAULT_COEFFICIENTS = Path(__file__).parents[1] / "data" / "gu2022.yaml"
#: |E| up to this many hm² (0.01 m²) counts as balanced: far below any survey's precision, and
#: above the slivers (~1e-11 hm²) that land-use layers whose neighbours do not share vertices leave
#: between two years, which would otherwise make an unchanged county a "demand" county. Used by
#: the accounting (roles), the market and the Monte Carlo alike.
BALANCED_TOLERANCE_HA = 1e-6


class StudyArea(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    provinces: list[str] | None = Field(None, description="keep counties of these provinces")
    county_ids: list[str] | None = Field(None, min_length=1, description="keep these county codes")

    @field_validator("county_ids", mode="before")
    @classmethod
    def _as_text(cls, v: list | None) -> list[str] | None:
        return None if v is None else [str(x) for x in v]


class Years(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Count = Field(ge=1900, le=2200)
    target: Count = Field(ge=1900, le=2200)

    @model_validator(mode="after")
    def _ordered(self) -> Years:
        if self.base >= self.target:
            raise ValueError(
                f"the base year ({self.base}) must be before the target year ({self.target}); "
                "swap them or fix the typo"
            )
        return self


class Baseline(BaseModel):
    """Each county's protection baseline (paper §2.1), against which M_t is compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["base_year", "protection_rate"] = Field(
        "base_year",
        description="base_year: the county's own M_0; protection_rate: the average standard-forest "
        "density (hm² per km²) of its `level` in the base year × the county's area",
    )
    level: Literal["national", "province", "city"] = Field(
        "province",
        description="with protection_rate: where the average is taken; national = the whole study area",
    )


class NationalValues(BaseModel):
    """National reference values of one year (the denominators of G_t and P_t)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gdp_per_capita_yuan: Number = Field(gt=0, description="national GDP per capita, yuan")
    population_density_per_km2: Number = Field(gt=0, description="national persons per km²")


# --- the market: section (see pipeline.accounting.market) -----------------------------------

#: The balancing levels, from the smallest to the largest.
LEVELS: tuple[str, ...] = ("city", "province", "region")
Level = Literal["city", "province", "region"]


class MarketConfig(BaseModel):
    """The ``market:`` section of the config. Areas in hm² of standard forest, money in yuan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    annual_cap_ha: Number | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="upper limit of the total volume traded in the year, hm² of standard forest; "
        "omitted: no cap",
    )
    floor_price_yuan_per_ha: Number = Field(
        ge=0,
        allow_inf_nan=False,
        description="government floor price, yuan per hm² of standard forest",
    )
    market_price_yuan_per_ha: Number | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="market price, yuan per hm²; the uniform price is max(floor, market); "
        "omitted: the floor price",
    )
    levels: tuple[Level, ...] = Field(
        LEVELS,
        description="balancing levels in order: city (same province and city), province, "
        "region (the whole study area); a subset of these in this order",
    )

    @field_validator("levels", mode="after")
    @classmethod
    def _nested_order(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError(f"give at least one level, e.g. {list(LEVELS)}")
        if len(set(v)) != len(v) or list(v) != sorted(v, key=LEVELS.index):
            raise ValueError(
                f"levels {list(v)} must be distinct and ordered from the smallest to the largest "
                f"({' → '.join(LEVELS)}), e.g. {list(LEVELS)}"
            )
        return v

    @property
    def price_yuan_per_ha(self) -> float:
        """The uniform clearing price: max(floor price, market price)."""
        market = self.market_price_yuan_per_ha
        floor = self.floor_price_yuan_per_ha
        return floor if market is None else max(floor, market)


# --- the uncertainty: section (see pipeline.accounting.uncertainty) -------------------------

Distribution = Literal["uniform", "triangular"]


class ValueRange(BaseModel):
    """The range of one uncertain value: ``spread`` (relative, ±) or explicit ``low``/``high``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spread: Number | None = Field(
        None, ge=0, le=1, allow_inf_nan=False,
        description="relative half-width: the value × [1 − spread, 1 + spread] (0.1 = ±10 %)",
    )  # fmt: skip
    low: Number | None = Field(
        None, ge=0, allow_inf_nan=False, description="lower bound, same unit as the value"
    )
    high: Number | None = Field(None, ge=0, allow_inf_nan=False, description="upper bound")
    mode: Number | None = Field(
        None, ge=0, allow_inf_nan=False,
        description="peak of a triangular range (with low/high); default: the deterministic value",
    )  # fmt: skip
    distribution: Distribution | None = Field(
        None, description="uniform or triangular; default: the section's `distribution`"
    )

    @model_validator(mode="after")
    def _one_form(self) -> ValueRange:
        explicit = self.low is not None or self.high is not None
        if self.spread is not None and explicit:
            raise ValueError("give either spread or low/high, not both")
        if self.spread is None and not (self.low is not None and self.high is not None):
            raise ValueError("give spread (e.g. 0.1 for ±10 %) or both low and high")
        if explicit and self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high}); swap them")
        if self.mode is not None:
            if not explicit:
                raise ValueError(
                    "mode goes with low/high; with spread the peak is the value itself"
                )
            if not self.low <= self.mode <= self.high:
                raise ValueError(
                    f"mode {self.mode} is outside [low, high] = [{self.low}, {self.high}]"
                )
        return self

    def bounds(self, value: float) -> tuple[float, float, float]:
        """(low, high, peak) around the deterministic ``value``."""
        if self.spread is not None:
            return value * (1 - self.spread), value * (1 + self.spread), value
        assert self.low is not None and self.high is not None
        return self.low, self.high, value if self.mode is None else self.mode


class NationalUncertainty(BaseModel):
    """National reference values of the target year: alternatives and/or a relative spread."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alternatives: list[NationalValues] = Field(
        default_factory=list,
        description="sets of {gdp_per_capita_yuan (yuan/person), population_density_per_km2 "
        "(persons/km²)} drawn with equal probability, e.g. initial and revised statistics; "
        "empty: the config's national values",
    )
    spread: Number = Field(
        0.0, ge=0, lt=1, allow_inf_nan=False,
        description="relative ± applied independently to each of the two values (0.02 = ±2 %)",
    )  # fmt: skip


class UncertaintyConfig(BaseModel):
    """The ``uncertainty:`` section of the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    draws: Count = Field(10_000, ge=1, le=10_000_000, description="number of Monte Carlo draws")
    seed: Count = Field(0, ge=0, description="seed of numpy.random.default_rng")
    distribution: Distribution = Field(
        "uniform", description="shape of every range that does not say otherwise"
    )
    coefficient_spread: Number = Field(
        0.0, ge=0, le=1, allow_inf_nan=False,
        description="relative ± range of every k of the coefficient table (0.1 = ±10 %)",
    )  # fmt: skip
    coefficients: dict[int | str, ValueRange] = Field(
        default_factory=dict,
        description='per code of the legend in use (21, "0301"; with two legends a code may '
        'be written LEGEND:CODE, e.g. "sandiao:0301"): {spread} or {low, high[, mode]} of k '
        "(dimensionless); overrides coefficient_spread for that code",
    )
    national: NationalUncertainty = Field(default_factory=NationalUncertainty)
    price: ValueRange | None = Field(
        None, description="range of the price q, yuan per hm²: {spread} or {low, high[, mode]}"
    )
    memory_mb: Count = Field(
        256,
        ge=8,
        description="working memory for the blocks of counties × draws computed at once, MiB",
    )


class Outputs(BaseModel):
    """Optional layers of eco_vouchers.gpkg."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    landuse_change: bool = Field(
        False,
        description="the layer landuse_change: polygons of every piece of each county whose "
        "land-use class changed, with county_id, from_code, to_code, area_ha, sf_change_ha; "
        "with raster land use also landuse_change.tif (from_code · 1000 + to_code)",
    )
    landuse: bool = Field(
        False,
        description="the layers landuse_<year> (base and target year): each year's land use "
        "clipped to the counties, with county_id, class_code, area_ha, legend",
    )


# --- the whole config -------------------------------------------------------------------------


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    study_area: StudyArea = StudyArea()
    years: Years
    equal_area_crs: str = DEFAULT_EQUAL_AREA_CRS
    coefficients: Path | list[Path] | None = Field(
        None,
        description="coefficient file, or a list with one file per legend in use (paths "
        "relative to the config); omitted: each land-use year uses its legend's shipped file "
        "(resdc: Gu, Tang & Wang's Table 1)",
    )
    national: dict[int, NationalValues]
    price_yuan_per_ha: Number = Field(ge=0, description="q_t, yuan per hm² of standard forest")
    landuse_overlaps: Literal["error", "first"] = Field(
        "error",
        description="overlapping land-use polygons: error (stop, naming counties and hectares) or "
        "first (the polygon earlier in the file keeps the shared area)",
    )
    raster_border: Literal["center", "exact"] = Field(
        "center",
        description="raster land use: center counts a pixel for the county holding its centre; "
        "exact splits boundary pixels by their exact coverage fractions",
    )
    baseline: Baseline = Baseline()
    market: MarketConfig | None = Field(None, description="clear the vouchers between counties")
    uncertainty: UncertaintyConfig | None = Field(None, description="Monte Carlo of the vouchers")
    outputs: Outputs = Outputs()
    path: Path | None = Field(None, description="the config file itself (set on load)")

    @field_validator("coefficients", mode="after")
    @classmethod
    def _absolute(cls, v: Path | list[Path] | None, info: ValidationInfo):  # type: ignore[no-untyped-def]
        if v is None:
            return None
        if isinstance(v, list):
            if not v:
                raise ValueError("is an empty list; name a file, a list of files, or omit it")
            return [resolve(p, info.context) for p in v]
        return resolve(v, info.context)

    @property
    def coefficient_files(self) -> list[Path]:
        """The coefficient files the config names (none when it names none)."""
        c = self.coefficients
        return [] if c is None else list(c) if isinstance(c, list) else [c]

    @field_validator("equal_area_crs", mode="after")
    @classmethod
    def _projected(cls, v: str) -> str:
        try:
            crs = CRS.from_user_input(v)
        except CRSError as exc:
            raise ValueError(f"'{v}' is not a CRS pyproj understands ({exc})") from exc
        if not crs.is_projected:
            raise ValueError(
                f"'{v}' is a geographic CRS: areas in degrees are meaningless. Use an equal-area "
                f"projection, e.g. the default '{DEFAULT_EQUAL_AREA_CRS}'"
            )
        if not is_equal_area(crs):
            method = crs.coordinate_operation.method_name if crs.coordinate_operation else "?"
            raise ValueError(
                f"'{v}' is a {method} projection, which does not preserve areas (e.g. Web "
                "Mercator inflates them by 1/cos²(latitude), 1.6× at 38°N). Use an equal-area "
                f"projection (Albers, Lambert azimuthal equal area), e.g. '{DEFAULT_EQUAL_AREA_CRS}'"
            )
        return v

    @model_validator(mode="after")
    def _national_for_target(self) -> Config:
        if self.years.target not in self.national:
            have = ", ".join(str(y) for y in sorted(self.national)) or "none"
            raise ValueError(
                f"national reference values for the target year {self.years.target} are missing "
                f"(given: {have}); add national: {{{self.years.target}: {{gdp_per_capita_yuan: …, "
                "population_density_per_km2: …}}"
            )
        return self

    @property
    def crs(self) -> CRS:
        return CRS.from_user_input(self.equal_area_crs)


def load_config(path: str | Path) -> tuple[Config, list[Coefficients]]:
    """Read and validate a config YAML file and the coefficient files it names (which of them
    each land-use year uses: :func:`pipeline.settings.coefficients.coefficients_by_year`)."""
    path = Path(path)
    data = read_yaml(path, "config")
    if isinstance(data, dict):
        data = {**data, "path": str(path.resolve())}
    config = parse_model(Config, data, path, "config")
    return config, [load_coefficients(p) for p in config.coefficient_files]
