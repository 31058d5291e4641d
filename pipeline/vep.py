"""VEP: the value of the ecosystem products of one site (特定地域单元生态产品价值), METHOD.md §2.

For each ecosystem product (an *item* of the config) V = P − P', where P is the expected income of
the site with the product and P' (``p_prime``, default 0) the income without it. P comes from one
of five appraisal methods:

* ``income_capitalization`` (收益还原法): constant net income A over n years,
  P = A/r · (1 − (1+r)^−n); or a list of yearly net incomes A_1 … A_n, P = Σ A_i (1+r)^−i.
* ``perpetual_income`` (马克思地价公式): P = a / r.
* ``market_comparison`` (市场比较法): P = Σ premium_per_m2 × floor_area_m2 over the properties.
* ``residual`` (剩余法): P = completed_value − development_cost − normal_profit.
* ``cost`` (成本法): P = Σ amounts.

All money is in yuan, rates are fractions (0.0681, not 6.81). Amounts are computed in float64 and
rounded only for display. Categories: the five standard ones (material, regulating, landscape,
tourism, cultural) are recognised; any other non-empty name is accepted with a warning, so that
local standards with further categories (e.g. rights income) can be valued.

Public names: :func:`run_vep`, :func:`compute_items`, :class:`VepConfig` (and its parts),
:class:`ItemResult`, :class:`VepResult`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from pipeline.errors import InputError, Problem
from pipeline.settings import read_yaml

__all__ = [
    "CATEGORIES",
    "METHODS",
    "CostLine",
    "ItemResult",
    "PropertyComparison",
    "SiteConfig",
    "VepConfig",
    "VepItem",
    "VepResult",
    "compute_items",
    "run_vep",
]

#: The standard product categories (METHOD.md §2). Others are accepted with a warning.
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
_SENSITIVITY_STEP = 0.01  # one percentage point
_GPKG_NAME = "vep.gpkg"
_ITEMS_CSV = "vep_items.csv"
_SENSITIVITY_CSV = "vep_sensitivity.csv"


# --------------------------------------------------------------------------------------------
# Config model
# --------------------------------------------------------------------------------------------


def _no_bool(value: Any) -> Any:
    """YAML turns yes/no/true into booleans; a boolean is never a valid amount, rate or count."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {value!r}")
    return value


_Num = Annotated[float, BeforeValidator(_no_bool)]
_Int = Annotated[int, BeforeValidator(_no_bool)]


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
    premium_per_m2: _Num | None = None  # yuan per m² of floor area, vs. comparable properties
    floor_area_m2: _Num | None = None  # m² of floor area


class CostLine(_Model):
    """One cost of the cost method."""

    name: str | None = None
    amount: _Num | None = None  # yuan


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
    rate: _Num | None = None  # r, fraction per year
    years: _Int | None = None  # n
    net_income: _Num | list[_Num] | None = None  # A (or a) yuan/year, or [A_1, …, A_n]
    p_prime: _Num = 0.0  # P', yuan
    properties: list[PropertyComparison] | None = None
    completed_value: _Num | None = None  # yuan
    development_cost: _Num | None = None  # yuan
    normal_profit: _Num | None = None  # yuan
    costs: Annotated[list[CostLine] | None, BeforeValidator(_cost_lines)] = None


class VepConfig(_Model):
    """A VEP config (CONTRACT.md "VEP config"): the site and its items."""

    site: SiteConfig = Field(default_factory=SiteConfig)
    description: str | None = None
    items: list[VepItem]


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    """The value of one item. ``index`` is 1-based, as in the messages and the tables."""

    index: int
    name: str
    category: str
    method: str
    p_yuan: float
    p_prime_yuan: float
    vep_yuan: float
    formula: str  # the formula with the numbers substituted
    rate: float | None = None
    years: int | None = None
    note: str | None = None

    @property
    def p_10k_yuan(self) -> float:
        return self.p_yuan / 1e4

    @property
    def p_prime_10k_yuan(self) -> float:
        return self.p_prime_yuan / 1e4

    @property
    def vep_10k_yuan(self) -> float:
        return self.vep_yuan / 1e4


@dataclass
class VepResult:
    """What :func:`run_vep` computed and wrote."""

    config: VepConfig
    items: list[ItemResult]
    total_yuan: float
    sensitivity: pd.DataFrame
    gpkg_path: Path
    items_csv_path: Path
    sensitivity_csv_path: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def total_10k_yuan(self) -> float:
        return self.total_yuan / 1e4


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _item_where(index: int, category: Any, method: Any, source: str) -> str:
    cat = category if isinstance(category, str) and category.strip() else "?"
    meth = method if isinstance(method, str) and method.strip() else "?"
    prefix = f"{source}, " if source else ""
    return f"{prefix}item {index} (category {cat!r}, method {meth!r})"


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
            f"({', '.join(CATEGORIES)}){_suggest(item.category, CATEGORIES)}; it is kept as given"
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
                f"unknown method {item.method!r}{_suggest(item.method, METHODS)}; "
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


def _config_problems(config: VepConfig, source: str = "") -> tuple[list[Problem], list[str]]:
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


_UNION_TAGS = {"float": "list", "list[float]": "scalar"}


def _pydantic_problems(
    error: ValidationError, raw: dict[str, Any], source: str, model: type[BaseModel]
) -> list[Problem]:
    """Turn pydantic's errors into Problems naming the item (1-based), its category and field."""
    problems: list[Problem] = []
    seen: set[str] = set()
    raw_items = raw.get("items")
    for err in error.errors():
        loc = list(err["loc"])
        where = source
        rest = loc
        raw_obj: Any = raw
        if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
            raw_item = raw_items[loc[1]] if isinstance(raw_items, list) else None
            cat = raw_item.get("category") if isinstance(raw_item, dict) else None
            meth = raw_item.get("method") if isinstance(raw_item, dict) else None
            where = _item_where(loc[1] + 1, cat, meth, source)
            rest = loc[2:]
            raw_obj = raw_item
        # union branches (net_income: number or list): keep the branch that matches the input
        parts: list[str] = []
        skip = False
        for part in rest:
            if isinstance(part, str) and part in _UNION_TAGS:
                value = raw_obj.get(parts[-1]) if isinstance(raw_obj, dict) and parts else None
                is_list = isinstance(value, list)
                if (part == "float" and is_list) or (part == "list[float]" and not is_list):
                    skip = True
                continue
            if isinstance(part, str) and ("function" in part or "[" in part):
                continue
            if isinstance(part, int):
                parts[-1:] = [f"{parts[-1]}[{part + 1}]"] if parts else [f"[{part + 1}]"]
            else:
                parts.append(part)
        if skip:
            continue
        fld = ".".join(parts)
        full_where = f"{where}, field {fld!r}" if fld else (where or "config")
        given = err.get("input")
        if err["type"] == "extra_forbidden":
            name = parts[-1] if parts else ""
            valid = _valid_fields(loc, model)
            msg = (
                f"unknown field{_suggest(name, valid)}; valid fields here: " + ", ".join(valid)
                if valid
                else "unknown field"
            )
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            msg = f"expected a mapping of field: value, got {given!r}"
        elif err["type"] == "missing":
            msg = "missing (required)"
        else:
            text = err["msg"].removeprefix("Value error, ")
            msg = f"{text}; got {given!r}"
            if parts and parts[0] == "net_income" and err["type"] != "value_error":
                msg = (
                    "expected a number (yuan per year) or a list of numbers [A_1, ..., A_n]; "
                    f"got {given!r}"
                )
        key = f"{full_where}: {msg}"
        if key not in seen:
            seen.add(key)
            problems.append(Problem(full_where, msg))
    return problems


def _valid_fields(loc: list[Any], model: type[BaseModel]) -> list[str]:
    """Field names of the model at ``loc`` (the location of an unknown field)."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        if not isinstance(part, str) or part not in current.model_fields:
            continue
        annotation = str(current.model_fields[part].annotation)
        for candidate in (SiteConfig, VepItem, PropertyComparison, CostLine):
            if candidate.__name__ in annotation:
                current = candidate
                break
    return list(current.model_fields)


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
class _Loaded:
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


def _load(config_path: Path) -> _Loaded:
    """Read and validate the whole config (and the site file); one InputError with every problem."""
    raw = _read_yaml(config_path)
    source = f"VEP config {config_path}"
    problems: list[Problem] = []
    warnings: list[str] = []
    config: VepConfig | None = None
    try:
        config = VepConfig.model_validate(raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, raw, source, VepConfig)
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
    return _Loaded(config, source, warnings, site_geometry, site_crs)


# --------------------------------------------------------------------------------------------
# Computation
# --------------------------------------------------------------------------------------------


def _num(x: float) -> str:
    """An input number as given, with thousands separators (1860000 → 1,860,000; 0.0681)."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e16:
        return f"{int(x):,}"
    text = repr(abs(x))
    if "e" in text or "." not in text:
        return repr(x)
    whole, frac = text.split(".")
    return f"{'-' if x < 0 else ''}{int(whole):,}.{frac}"


def _money(x: float) -> str:
    """An amount rounded to the fen for display (-0.00 shown as 0.00)."""
    text = f"{x:,.2f}"
    return "0.00" if text == "-0.00" else text


def _p(item: VepItem, rate: float | None) -> tuple[float, str]:
    """P of an item and its formula with numbers, at ``rate`` (for rate-based methods)."""
    method = item.method
    if method == "income_capitalization":
        assert rate is not None and item.net_income is not None
        if isinstance(item.net_income, list):
            p = math.fsum(a * (1.0 + rate) ** -i for i, a in enumerate(item.net_income, 1))
            terms = " + ".join(
                f"{_num(a)}/{_num(1 + rate)}^{i}" for i, a in enumerate(item.net_income, 1)
            )
            return p, f"P = sum A_i/(1+r)^i = {terms} = {_money(p)}"
        assert item.years is not None
        a, n = item.net_income, item.years
        p = a / rate * (1.0 - (1.0 + rate) ** -n)
        return p, (
            f"P = A/r*(1-(1+r)^-n) = {_num(a)}/{_num(rate)}*(1-{_num(1 + rate)}^-{n}) = {_money(p)}"
        )
    if method == "perpetual_income":
        assert rate is not None and isinstance(item.net_income, float | int)
        p = item.net_income / rate
        return p, f"P = a/r = {_num(item.net_income)}/{_num(rate)} = {_money(p)}"
    if method == "market_comparison":
        props = item.properties or []
        p = math.fsum((pr.premium_per_m2 or 0.0) * (pr.floor_area_m2 or 0.0) for pr in props)
        terms = " + ".join(
            f"{_num(pr.premium_per_m2 or 0.0)}*{_num(pr.floor_area_m2 or 0.0)}" for pr in props
        )
        return p, f"P = sum premium_per_m2*floor_area_m2 = {terms} = {_money(p)}"
    if method == "residual":
        cv, dc, npf = item.completed_value, item.development_cost, item.normal_profit
        assert cv is not None and dc is not None and npf is not None
        p = cv - dc - npf
        return p, (
            "P = completed_value - development_cost - normal_profit = "
            f"{_num(cv)} - {_num(dc)} - {_num(npf)} = {_money(p)}"
        )
    if method == "cost":
        amounts = [line.amount or 0.0 for line in item.costs or []]
        p = math.fsum(amounts)
        return p, f"P = sum costs = {' + '.join(_num(a) for a in amounts)} = {_money(p)}"
    raise AssertionError(f"unvalidated method {method!r}")  # _item_problems rejects it


def _item_result(item: VepItem, index: int, rate: float | None) -> ItemResult:
    p, formula = _p(item, rate)
    v = p - item.p_prime
    formula += f"; V = P - P' = {_money(p)} - {_num(item.p_prime)} = {_money(v)}"
    years = item.years
    if item.method == "income_capitalization" and isinstance(item.net_income, list):
        years = len(item.net_income)
    uses_rate = item.method in ("income_capitalization", "perpetual_income")
    return ItemResult(
        index=index,
        name=item.name or f"{item.category} ({item.method})",
        category=str(item.category),
        method=str(item.method),
        p_yuan=p,
        p_prime_yuan=float(item.p_prime),
        vep_yuan=v,
        formula=formula,
        rate=rate if uses_rate else None,
        years=years if item.method == "income_capitalization" else None,
        note=item.note,
    )


def compute_items(config: VepConfig) -> list[ItemResult]:
    """V = P − P' of every item of ``config`` (validated first: InputError lists every problem)."""
    problems, _ = _config_problems(config)
    if problems:
        raise InputError(problems)
    return [_item_result(item, i, item.rate) for i, item in enumerate(config.items, 1)]


def _sensitivity(config: VepConfig, results: list[ItemResult]) -> pd.DataFrame:
    """Each item's V and the total at r − 1 pp, r and r + 1 pp (each item at its own r)."""
    rows: list[dict[str, Any]] = []
    totals: dict[str, list[float]] = {"minus": [], "base": [], "plus": []}
    for item, res in zip(config.items, results, strict=True):
        row: dict[str, Any] = {
            "item": str(res.index),
            "name": res.name,
            "category": res.category,
            "method": res.method,
        }
        notes: list[str] = []
        for key, step in (
            ("minus", -_SENSITIVITY_STEP),
            ("base", 0.0),
            ("plus", _SENSITIVITY_STEP),
        ):
            if res.rate is None:
                rate, v = None, res.vep_yuan
            elif step == 0.0:
                rate, v = res.rate, res.vep_yuan
            else:
                rate = round(res.rate + step, 12)
                if 0 < rate < 1:
                    v = _item_result(item, res.index, rate).vep_yuan
                else:
                    v = math.nan
                    notes.append(f"r = {rate:g} is outside (0, 1): V not computed")
            row[f"rate_{key}"] = rate
            row[f"vep_yuan_{key}"] = v
            totals[key].append(v)
        row["note"] = (
            "; ".join(notes)
            if notes
            else ("no rate: V does not depend on r" if res.rate is None else "")
        )
        rows.append(row)
    total_row: dict[str, Any] = {"item": "total", "name": "all items", "category": "", "method": ""}
    for key, values in totals.items():
        total_row[f"rate_{key}"] = None
        total_row[f"vep_yuan_{key}"] = (
            math.nan if any(math.isnan(v) for v in values) else math.fsum(values)
        )
    total_row["note"] = "each item at its own r shifted by the same step"
    rows.append(total_row)
    frame = pd.DataFrame(rows)
    names = {"minus": "r_minus_1pp", "base": "r", "plus": "r_plus_1pp"}
    out = frame[["item", "name", "category", "method"]].copy()
    for key, label in names.items():
        out[f"rate_{label}"] = pd.to_numeric(frame[f"rate_{key}"], errors="coerce")
    for key, label in names.items():
        out[f"vep_yuan_{label}"] = frame[f"vep_yuan_{key}"].astype("float64")
    for key, label in names.items():
        out[f"vep_10k_yuan_{label}"] = frame[f"vep_yuan_{key}"].astype("float64") / 1e4
    out["note"] = frame["note"]
    return out


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _items_frame(results: list[ItemResult]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item": [r.index for r in results],
            "name": [r.name for r in results],
            "category": [r.category for r in results],
            "method": [r.method for r in results],
            "rate": pd.Series([r.rate for r in results], dtype="float64"),
            "years": pd.Series([r.years for r in results], dtype="Int64"),
            "p_yuan": [r.p_yuan for r in results],
            "p_prime_yuan": [r.p_prime_yuan for r in results],
            "vep_yuan": [r.vep_yuan for r in results],
            "p_10k_yuan": [r.p_10k_yuan for r in results],
            "p_prime_10k_yuan": [r.p_prime_10k_yuan for r in results],
            "vep_10k_yuan": [r.vep_10k_yuan for r in results],
            "formula": [r.formula for r in results],
            "note": [r.note or "" for r in results],
        }
    )


def _site_frame(loaded: _Loaded, results: list[ItemResult], total: float) -> Any:
    import geopandas as gpd

    from pipeline import __version__

    site = loaded.config.site
    attrs = {
        "name": [site.name or Path(loaded.source.removeprefix("VEP config ")).stem],
        "n_items": [len(results)],
        "p_yuan": [math.fsum(r.p_yuan for r in results)],
        "p_prime_yuan": [math.fsum(r.p_prime_yuan for r in results)],
        "vep_yuan": [total],
        "vep_10k_yuan": [total / 1e4],
        "config": [str(loaded.source.removeprefix("VEP config "))],
        "software": [f"ecovoucher {__version__}"],
        "created_utc": [datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")],
    }
    if loaded.site_geometry is None:
        return pd.DataFrame(attrs)
    return gpd.GeoDataFrame(attrs, geometry=[loaded.site_geometry], crs=loaded.site_crs)


def _tmp_path(out_dir: Path, name: str) -> Path:
    stem, dot, suffix = name.rpartition(".")
    return out_dir / f".{stem}.{uuid.uuid4().hex[:12]}.tmp{dot}{suffix}"


def _write_outputs(
    out_dir: Path, items: pd.DataFrame, site: Any, sensitivity: pd.DataFrame
) -> tuple[Path, Path, Path]:
    """Write every output to a temporary file, then move them all into place."""
    import pyogrio

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            Problem(f"output folder {out_dir}", f"cannot be created: {exc.strerror or exc}")
        ) from exc
    if not out_dir.is_dir():
        raise InputError(Problem(f"output folder {out_dir}", "exists and is not a folder"))
    final = {
        "gpkg": out_dir / _GPKG_NAME,
        "items": out_dir / _ITEMS_CSV,
        "sens": out_dir / _SENSITIVITY_CSV,
    }
    tmp = {key: _tmp_path(out_dir, path.name) for key, path in final.items()}
    try:
        pyogrio.write_dataframe(items, tmp["gpkg"], layer="vep_items", driver="GPKG")
        pyogrio.write_dataframe(site, tmp["gpkg"], layer="vep_site", driver="GPKG")
        items.to_csv(tmp["items"], index=False, encoding="utf-8-sig")
        sensitivity.to_csv(tmp["sens"], index=False, encoding="utf-8-sig")
        for key in ("items", "sens", "gpkg"):  # the gpkg last: its presence means success
            os.replace(tmp[key], final[key])
    finally:
        for path in tmp.values():
            for suffix in ("", "-journal", "-wal", "-shm"):
                leftover = path.with_name(path.name + suffix)
                if leftover.exists():
                    leftover.unlink()
    return final["gpkg"], final["items"], final["sens"]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(_width(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [_pad(cell, widths[c], c in right) for c, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines


def _echo_report(
    loaded: _Loaded,
    results: list[ItemResult],
    total: float,
    sensitivity: pd.DataFrame,
    echo: Callable[[str], None],
) -> None:
    site = loaded.config.site
    echo(f"VEP of {site.name or 'the site'} ({loaded.source})")
    for warning in loaded.warnings:
        echo(f"warning: {warning}")
    header = [
        "#",
        "category",
        "method",
        "name",
        "P (yuan)",
        "P' (yuan)",
        "V (yuan)",
        "V (10^4 yuan)",
    ]
    rows = [
        [
            str(r.index),
            r.category,
            r.method,
            r.name,
            _money(r.p_yuan),
            _money(r.p_prime_yuan),
            _money(r.vep_yuan),
            _money(r.vep_10k_yuan),
        ]
        for r in results
    ]
    rows.append(["", "total", "", "", "", "", _money(total), _money(total / 1e4)])
    lines = _table(header, rows, right={0, 4, 5, 6, 7})
    echo(lines[0])
    for r, line in zip(results, lines[1:-1], strict=True):
        echo(line)
        echo(f"    {r.formula}")
    echo(lines[-1])
    by_category: dict[str, float] = {}
    for r in results:
        by_category[r.category] = by_category.get(r.category, 0.0) + r.vep_yuan
    echo(
        "by category (10^4 yuan): "
        + ", ".join(f"{cat} {_money(v / 1e4)}" for cat, v in by_category.items())
    )
    echo("sensitivity of V to the rate, 10^4 yuan (each item at its own r):")
    s_rows = []
    for rec in sensitivity.to_dict("records"):
        cells = [str(rec["item"]), str(rec["name"])]
        for label in ("r_minus_1pp", "r", "r_plus_1pp"):
            v = rec[f"vep_10k_yuan_{label}"]
            rate = rec[f"rate_{label}"]
            text = "n/a" if pd.isna(v) else _money(v)
            if not pd.isna(rate):
                text += f" @{rate * 100:.2f}%"
            cells.append(text)
        s_rows.append(cells)
    for line in _table(["#", "name", "r - 1 pp", "r", "r + 1 pp"], s_rows, right={0, 2, 3, 4}):
        echo(line)


def run_vep(config_path: Path, out_dir: Path, *, echo: Callable[[str], None] = print) -> VepResult:
    """Value one site: read and check ``config_path``, write ``out_dir/vep.gpkg`` and the CSVs.

    Every problem of the config (and of the site file) is collected into one InputError before
    anything is written; the GeoPackage is written to a temporary file and moved into place, so
    a failed run leaves no half-written ``vep.gpkg``.
    """
    config_path = Path(config_path)
    out_dir = Path(out_dir)
    loaded = _load(config_path)
    results = compute_items(loaded.config)
    total = math.fsum(r.vep_yuan for r in results)
    sensitivity = _sensitivity(loaded.config, results)
    gpkg, items_csv, sens_csv = _write_outputs(
        out_dir, _items_frame(results), _site_frame(loaded, results, total), sensitivity
    )
    _echo_report(loaded, results, total, sensitivity, echo)
    echo(f"wrote {gpkg}, {items_csv}, {sens_csv}")
    return VepResult(
        config=loaded.config,
        items=results,
        total_yuan=total,
        sensitivity=sensitivity,
        gpkg_path=gpkg,
        items_csv_path=items_csv,
        sensitivity_csv_path=sens_csv,
        warnings=list(loaded.warnings),
    )
