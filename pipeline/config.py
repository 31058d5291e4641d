"""Stage 1b — the run configuration: study area, years, CRS, coefficients, national values, price.

See README, 'Config'. Relative paths are relative to the config file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pyproj import CRS
from pyproj.exceptions import CRSError

from pipeline.coefficients import Coefficients, load_coefficients
from pipeline.market import MarketConfig
from pipeline.national import NationalValues
from pipeline.settings import parse_model, read_yaml, resolve
from pipeline.uncertainty import UncertaintyConfig

#: Albers equal-area conic for China on the Krasovsky ellipsoid, as RESDC uses.
DEFAULT_EQUAL_AREA_CRS = (
    "+proj=aea +lat_0=0 +lat_1=25 +lat_2=47 +lon_0=105 +x_0=0 +y_0=0 +ellps=krass +units=m +no_defs"
)
#: Table 1 of Gu, Tang & Wang (2022), shipped with the package.
DEFAULT_COEFFICIENTS = Path(__file__).parent / "data" / "gu2022.yaml"


#: pyproj projection-method names (lower case) of equal-area projections
EQUAL_AREA_METHODS = (
    "equal area",  # Albers, Lambert azimuthal / cylindrical equal area
    "mollweide",
    "sinusoidal",
    "equal earth",
    "eckert ii",
    "eckert iv",
    "eckert vi",
    "goode homolosine",
    "quartic authalic",
    "bonne",
)


def is_equal_area(crs: CRS) -> bool:
    """Whether a projected CRS preserves areas (by its projection method's name)."""
    op = crs.coordinate_operation
    name = (op.method_name if op else "").lower()
    return any(m in name for m in EQUAL_AREA_METHODS)


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

    base: int = Field(ge=1900, le=2200)
    target: int = Field(ge=1900, le=2200)

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


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    study_area: StudyArea = StudyArea()
    years: Years
    equal_area_crs: str = DEFAULT_EQUAL_AREA_CRS
    coefficients: Path = DEFAULT_COEFFICIENTS
    national: dict[int, NationalValues]
    price_yuan_per_ha: float = Field(ge=0, description="q_t, yuan per hm² of standard forest")
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
    path: Path | None = Field(None, description="the config file itself (set on load)")

    @field_validator("coefficients", mode="after")
    @classmethod
    def _absolute(cls, v: Path, info: ValidationInfo) -> Path:
        return resolve(v, info.context)

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


def load_config(path: str | Path) -> tuple[Config, Coefficients]:
    """Read and validate a config YAML file and the coefficient table it names."""
    path = Path(path)
    data = read_yaml(path, "config")
    if isinstance(data, dict):
        data = {**data, "path": str(path.resolve())}
    config = parse_model(Config, data, path, "config")
    return config, load_coefficients(config.coefficients)
