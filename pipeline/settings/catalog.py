"""Stage 1 (settings) — the data catalog: where each input is and how to read it.

See docs/catalog-config.md, 'Catalog'. Relative paths are relative to the catalog file.
"""

from __future__ import annotations

import codecs
import glob as globmod
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline.errors import InputError
from pipeline.settings.legends import DEFAULT_LEGEND, Legend, load_legend
from pipeline.settings.parse import Number, parse_model, read_yaml, resolve


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="file path; relative paths are relative to the catalog file")

    @field_validator("path", mode="after")
    @classmethod
    def _absolute(cls, v: Path, info: ValidationInfo) -> Path:
        return resolve(v, info.context)


def _known_encoding(v: str | None) -> str | None:
    """An encoding Python (and so the reader) knows; 'klingon' is refused with examples."""
    if v is None:
        return v
    try:
        codecs.lookup(v)
    except LookupError:
        raise ValueError(
            f"'{v}' is not a known text encoding; use e.g. GBK (RESDC shapefiles), GB18030, "
            "UTF-8 or Big5"
        ) from None
    return v


Encoding = Annotated[str | None, AfterValidator(_known_encoding)]


class _Source(_File):
    layer: str | None = Field(None, description="layer name, for multi-layer files")
    crs: str | None = Field(None, description="CRS to assume when the file carries none")
    encoding: Encoding = Field(None, description="attribute encoding when a shapefile has no .cpg")


class CountiesSource(_Source):
    id_field: str = Field("adcode", description="county code, kept as text")
    name_field: str = "name"
    province_field: str | None = "province"
    city_field: str | None = "city"


class LanduseSource(_Source):
    path: Path = Field(
        description="file path, relative to the catalog; or (in the YAML) a list of files or a "
        "glob ('sandiao_2019/*.gdb'): then the files are in `files` and `path` names the glob, "
        "or the folder of the listed files, for messages"
    )
    files: tuple[Path, ...] = Field(
        (), description="the year's files when there are several (set from a list or glob)"
    )
    format: Literal["vector", "raster"] = "vector"
    code_field: str = Field("gridcode", description="field with the class code (vector)")
    legend: str = Field(
        DEFAULT_LEGEND,
        description="the map's legend: a shipped name (resdc, sandiao, gbt21010_2007, clcd, "
        "globeland30, esa_worldcover, modis_igbp) or a legend file (relative to the catalog)",
    )

    @field_validator("legend", mode="after")
    @classmethod
    def _known_legend(cls, v: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get("base")
        try:
            legend = load_legend(v, base)
        except InputError as exc:
            raise ValueError("; ".join(p.message for p in exc.problems)) from exc
        return legend.key  # a shipped name, or the legend file's absolute path

    @model_validator(mode="before")
    @classmethod
    def _many_files(cls, data: object, info: ValidationInfo) -> object:
        """``path:`` as a list or a glob → ``files`` (each resolved; a glob that matches nothing
        is an error naming it)."""
        if not isinstance(data, dict) or data.get("files"):
            return data
        raw = data.get("path")
        if isinstance(raw, str) and any(ch in raw for ch in "*?["):
            pattern = resolve(raw, info.context)
            found = sorted(Path(p) for p in globmod.glob(str(pattern)))
            if not found:
                raise ValueError(
                    f"the glob '{raw}' matches no file (looked for {pattern}); check the pattern "
                    "and the folder it is relative to (the catalog's)"
                )
            return {**data, "path": str(pattern), "files": [str(p) for p in found]}
        if isinstance(raw, list):
            if not raw:
                raise ValueError("'path' is an empty list; name at least one file")
            found = [resolve(p, info.context) for p in raw]
            if len(found) == 1:
                return {**data, "path": str(found[0])}
            folder = Path(os.path.commonpath([str(p.parent) for p in found]))
            return {**data, "path": str(folder), "files": [str(p) for p in found]}
        return data

    @field_validator("files", mode="after")
    @classmethod
    def _absolute_files(cls, v: tuple[Path, ...], info: ValidationInfo) -> tuple[Path, ...]:
        return tuple(resolve(p, info.context) for p in v)

    @property
    def all_files(self) -> tuple[Path, ...]:
        """The year's files: ``files``, or ``path`` alone."""
        return self.files or (self.path,)

    def legend_of(self) -> Legend:
        """The legend this year's codes are read with."""
        return load_legend(self.legend)


class SocioSource(_File):
    encoding: Encoding = Field(
        None,
        description="CSV text encoding; default: UTF-8, or GBK (with a warning) if not UTF-8; "
        "declaring it silences the warning",
    )
    sheet: str | None = Field(
        None, description="for an .xlsx workbook: the sheet to read (default: the first)"
    )
    id_field: str = "code"
    year_field: str = "year"
    gdp_field: str = "gdp"
    gdp_scale: Number = Field(1.0, gt=0, description="gdp × gdp_scale is in yuan")
    population_field: str = "pop"
    population_scale: Number = Field(1.0, gt=0, description="pop × population_scale is persons")


class Datasets(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    counties: CountiesSource
    landuse: dict[int, LanduseSource]
    socioeconomic: SocioSource


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: Datasets
    notes: str | None = Field(None, description="free text copied into the output's provenance")
    path: Path | None = Field(None, description="the catalog file itself (set on load)")

    def legends(self) -> dict[int, Legend]:
        """Each land-use year's legend."""
        return {y: e.legend_of() for y, e in sorted(self.datasets.landuse.items())}


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog YAML file."""
    path = Path(path)
    data = read_yaml(path, "catalog")
    if isinstance(data, dict):
        data = {**data, "path": str(path.resolve())}
    return parse_model(Catalog, data, path, "catalog")
