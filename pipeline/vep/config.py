"""The VEP config: its schema (pydantic), and reading and checking it with every problem named."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from pipeline.errors import InputError, Problem
from pipeline.settings.parse import Count, Number, close_match, explain_errors, read_yaml

#: The standard product categories (docs/method.md §2). Others are accepted with a warning.
CATEGORIES: tuple[str, ...] = ("material", "regulating", "landscape", "tourism", "cultural")
#: The appraisal methods and the item fields each one uses (besides category, method, name,
#: note and p_prime, which every item may have).
METHODS: dict[str, tuple[str, ...]] = {
    "income_capitalization": ("net_income", "rate", "years"),
    "perpetual_income": ("net_income", "rate"),
    "market_comparison": ("properties",),
    "residual": ("completed_value", "development_cost", "normal_profit"),
    "cost": ("costs",),
}
_COMMON_FIELDS: frozenset[str] = frozenset({"category", "method", "name", "note", "p_prime"})


# --------------------------------------------------------------------------------------------
# Config model
# --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class SiteConfig(_Model):
    """The site: a name and, optionally, a polygon layer (any vector format GDAL reads)."""

    name: str = ""
    path: Path | None = None  # relative paths are relative to the config file
    layer: str | None = None  # for multi-layer files


class PropertyComparison(_Model):
    """One property near the site for the market comparison method."""

    name: str | None = None
    premium_per_m2: Number | None = None  # yuan per m² of floor area, vs. comparable properties
    floor_area_m2: Number | None = None  # m² of floor area


class CostLine(_Model):
    """One cost of the cost method."""

    name: str | None = None
    amount: Number | None = None  # yuan


def _cost_lines(value: Any) -> Any:
    """``costs: [120000, 80000]`` is shorthand for ``[{amount: 120000}, {amount: 80000}]``."""
    if isinstance(value, list):
        return [
            {"amount": v} if isinstance(v, int | float) and not isinstance(v, bool) else v
            for v in value
        ]
    return value


class VepItem(_Model):
    """One ecosystem product. Which fields are required depends on ``method`` (see METHODS)."""

    category: str | None = None
    method: str | None = None
    name: str | None = None
    note: str | None = None
    rate: Number | None = None  # r, fraction per year
    years: Count | None = None  # n
    net_income: Number | list[Number] | None = None  # A (or a) yuan/year, or [A_1, …, A_n]
    p_prime: Number = 0.0  # P', yuan
    properties: list[PropertyComparison] | None = None
    completed_value: Number | None = None  # yuan
    development_cost: Number | None = None  # yuan
    normal_profit: Number | None = None  # yuan
    costs: Annotated[list[CostLine] | None, BeforeValidator(_cost_lines)] = None


class VepConfig(_Model):
    """A VEP config (docs/vep.md): the site and its items."""

    site: SiteConfig = Field(default_factory=SiteConfig)
    description: str | None = None
    items: list[VepItem]


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _item_where(index: int, category: Any, method: Any, source: str) -> str:
    cat = category if isinstance(category, str) and category.strip() else "?"
    meth = method if isinstance(method, str) and method.strip() else "?"
    prefix = f"{source}, " if source else ""
    return f"{prefix}item {index} (category {cat!r}, method {meth!r})"


def _cat_meth(raw_item: Any) -> tuple[Any, Any]:
    """The category and method given for a raw item (None where it is not a mapping)."""
    if not isinstance(raw_item, dict):
        return None, None
    return raw_item.get("category"), raw_item.get("method")


def _check_rate(rate: float, where: str) -> list[Problem]:
    if 0 < rate < 1:
        return []
    hint = ""
    if 1 <= rate < 100:
        hint = f"; if you meant {rate:g} %, write {rate / 100:g}"
    return [
        Problem(
            f"{where}, field 'rate'",
            f"rate {rate:g} is out of range: r must be a fraction with 0 < r < 1{hint}",
        )
    ]


def _item_problems(item: VepItem, index: int, source: str) -> tuple[list[Problem], list[str]]:
    """Problems (errors) and warnings of one validated item; ``index`` is 1-based."""
    where = _item_where(index, item.category, item.method, source)
    problems: list[Problem] = []
    warnings: list[str] = []

    def missing(fld: str, what: str) -> None:
        problems.append(
            Problem(f"{where}, field {fld!r}", f"missing: method {item.method!r} needs {what}")
        )

    if item.category is None or not item.category:
        problems.append(
            Problem(
                f"{where}, field 'category'",
                "missing: give the product category, one of " + ", ".join(CATEGORIES),
            )
        )
    elif item.category not in CATEGORIES:
        warnings.append(
            f"{where}: category {item.category!r} is not one of the standard categories "
            f"({', '.join(CATEGORIES)}){close_match(item.category, CATEGORIES)}; it is kept as given"
        )

    if item.method is None or not item.method:
        problems.append(
            Problem(
                f"{where}, field 'method'",
                "missing: give the appraisal method, one of " + ", ".join(METHODS),
            )
        )
        return problems, warnings
    if item.method not in METHODS:
        problems.append(
            Problem(
                f"{where}, field 'method'",
                f"unknown method {item.method!r}{close_match(item.method, METHODS)}; "
                "valid methods: " + ", ".join(METHODS),
            )
        )
        return problems, warnings

    used = set(METHODS[item.method]) | _COMMON_FIELDS
    for fld in sorted(item.model_fields_set - used):
        if getattr(item, fld) is not None:
            warnings.append(
                f"{where}: field {fld!r} is not used by method {item.method!r} and is ignored"
            )

    method = item.method
    if method in ("income_capitalization", "perpetual_income"):
        if item.rate is None:
            missing("rate", "the capitalization rate r (a fraction, e.g. 0.0681)")
        else:
            problems += _check_rate(item.rate, where)
        if item.net_income is None:
            what = (
                "the constant annual net income a (yuan/year)"
                if method == "perpetual_income"
                else "the annual net income A (yuan/year) or a list [A_1, ..., A_n]"
            )
            missing("net_income", what)
    if method == "income_capitalization":
        if isinstance(item.net_income, list):
            if not item.net_income:
                problems.append(
                    Problem(
                        f"{where}, field 'net_income'",
                        "the list of yearly net incomes is empty; give A_1, ..., A_n",
                    )
                )
            elif item.years is not None and item.years != len(item.net_income):
                problems.append(
                    Problem(
                        f"{where}, field 'years'",
                        f"years = {item.years} but net_income lists {len(item.net_income)} "
                        "yearly values; drop 'years' (n is the length of the list) or fix it",
                    )
                )
        elif item.net_income is not None and item.years is None:
            missing("years", "the number of years n when net_income is a single number")
        if item.years is not None and item.years < 1:
            problems.append(
                Problem(
                    f"{where}, field 'years'",
                    f"years = {item.years}: the income period n must be at least 1 year",
                )
            )
    elif method == "perpetual_income":
        if isinstance(item.net_income, list):
            problems.append(
                Problem(
                    f"{where}, field 'net_income'",
                    "perpetual_income takes one constant annual net income a, not a list; "
                    "for yearly values A_1, ..., A_n use method 'income_capitalization'",
                )
            )
    elif method == "market_comparison":
        if not item.properties:
            missing("properties", "a non-empty list of {name, premium_per_m2, floor_area_m2}")
        for k, prop in enumerate(item.properties or [], 1):
            label = f"properties[{k}]" + (f" ({prop.name})" if prop.name else "")
            if prop.premium_per_m2 is None:
                problems.append(
                    Problem(
                        f"{where}, field '{label}.premium_per_m2'",
                        "missing: the price premium in yuan per m² of floor area",
                    )
                )
            if prop.floor_area_m2 is None:
                problems.append(
                    Problem(
                        f"{where}, field '{label}.floor_area_m2'",
                        "missing: the floor area in m²",
                    )
                )
            elif prop.floor_area_m2 < 0:
                problems.append(
                    Problem(
                        f"{where}, field '{label}.floor_area_m2'",
                        f"floor area {prop.floor_area_m2:g} m² is negative; it must be ≥ 0",
                    )
                )
    elif method == "residual":
        for fld, what in (
            ("completed_value", "the value of the completed project (yuan)"),
            ("development_cost", "the development cost (yuan)"),
            ("normal_profit", "the normal (objective) profit of the developer (yuan)"),
        ):
            if getattr(item, fld) is None:
                missing(fld, what)
    elif method == "cost":
        if not item.costs:
            missing("costs", "a non-empty list of {name, amount} (yuan)")
        for k, line in enumerate(item.costs or [], 1):
            if line.amount is None:
                label = f"costs[{k}]" + (f" ({line.name})" if line.name else "")
                problems.append(
                    Problem(f"{where}, field '{label}.amount'", "missing: the amount in yuan")
                )
    return problems, warnings


def config_problems(config: VepConfig, source: str = "") -> tuple[list[Problem], list[str]]:
    problems: list[Problem] = []
    warnings: list[str] = []
    if not config.items:
        prefix = f"{source}, " if source else ""
        problems.append(Problem(f"{prefix}field 'items'", "no items: list at least one product"))
    for i, item in enumerate(config.items, 1):
        p, w = _item_problems(item, i, source)
        problems += p
        warnings += w
    return problems, warnings


#: the text said when net_income has the wrong type
_HINTS = {
    "net_income": "expected a number (yuan per year) or a list of numbers [A_1, ..., A_n]",
}


def _read_yaml(config_path: Path) -> dict[str, Any]:
    where = f"VEP config {config_path}"
    raw = read_yaml(config_path, "VEP config")
    if not isinstance(raw, dict):
        raise InputError(
            Problem(
                where,
                "must be a YAML mapping with 'site' and 'items' keys, "
                f"got {type(raw).__name__ if raw is not None else 'an empty file'}",
            )
        )
    return raw


@dataclass
class LoadedConfig:
    config: VepConfig
    source: str
    warnings: list[str]
    site_geometry: Any = None  # shapely geometry or None
    site_crs: Any = None


def _read_site(site: SiteConfig, where: str) -> tuple[Any, Any, list[Problem]]:
    """The site polygon (union of the layer's features) and its CRS, or problems."""
    import geopandas as gpd

    assert site.path is not None
    where = f"{where}, site file {site.path}"
    if not site.path.exists():
        return None, None, [Problem(where, "file not found (relative to the config file)")]
    try:
        kwargs: dict[str, Any] = {"layer": site.layer} if site.layer else {}
        gdf = gpd.read_file(site.path, engine="pyogrio", **kwargs)
    except Exception as exc:  # GDAL raises many kinds; all mean "cannot read"
        return None, None, [Problem(where, f"cannot be read as a vector layer: {exc}")]
    geoms = gdf.geometry[gdf.geometry.notna() & ~gdf.geometry.is_empty] if len(gdf) else []
    if len(geoms) == 0:
        return None, None, [Problem(where, "has no features with a geometry")]
    kinds = set(geoms.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        return (
            None,
            None,
            [Problem(where, f"must hold polygons, found {', '.join(sorted(kinds))}")],
        )
    geom = geoms.union_all() if len(geoms) > 1 else geoms.iloc[0]
    return geom, gdf.crs, []


def _item_number(problem: Problem) -> int:
    """Sort key: problems of the config itself first, then by item (stable within an item)."""
    match = re.search(r", item (\d+) \(", problem.where)
    return int(match.group(1)) if match else 0


def load_vep_config(config_path: Path) -> LoadedConfig:
    """Read and validate the whole config (and the site file); one InputError with every problem."""
    raw = _read_yaml(config_path)
    source = f"VEP config {config_path}"
    problems: list[Problem] = []
    warnings: list[str] = []
    config: VepConfig | None = None
    try:
        config = VepConfig.model_validate(raw)
    except ValidationError as exc:
        problems += explain_errors(
            exc,
            raw,
            source,
            VepConfig,
            items=("items", lambda i, it: _item_where(i, *_cat_meth(it), source)),
            hints=_HINTS,
        )
    # every item is checked further on its own (minus the fields pydantic rejected), so that
    # every problem is listed, not only the type errors
    raw_items = raw.get("items")
    if isinstance(raw_items, list):
        if not raw_items:
            problems.append(
                Problem(f"{source}, field 'items'", "no items: list at least one product")
            )
        for i, raw_item in enumerate(raw_items, 1):
            if not isinstance(raw_item, dict):
                continue  # already reported above
            bad: set[str] = set()
            try:
                VepItem.model_validate(raw_item)
            except ValidationError as exc:
                bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
            try:
                item = VepItem.model_validate({k: v for k, v in raw_item.items() if k not in bad})
            except ValidationError:
                continue
            p, w = _item_problems(item, i, source)
            problems += [pr for pr in p if not any(f"field '{b}" in pr.where for b in bad)]
            warnings += w
    # the site, even when an item is wrong
    site: SiteConfig | None = None
    if config is not None:
        site = config.site
    elif isinstance(raw.get("site"), dict):
        try:
            site = SiteConfig.model_validate(raw["site"])
        except ValidationError:
            site = None  # already reported above
    site_geometry = site_crs = None
    if site is not None and site.path is not None:
        path = site.path if site.path.is_absolute() else config_path.parent / site.path
        site = site.model_copy(update={"path": path})
        if config is not None:
            config = config.model_copy(update={"site": site})
        site_geometry, site_crs, site_problems = _read_site(site, source)
        problems += site_problems
    problems.sort(key=_item_number)
    if problems or config is None:
        raise InputError(problems)
    return LoadedConfig(config, source, warnings, site_geometry, site_crs)
