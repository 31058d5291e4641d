"""VEP arithmetic: P of each item by its appraisal method, V = P − P', and the sensitivity to the rate."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import InputError, Problem
from pipeline.numbers import as_given, display
from pipeline.vep.config import VepConfig, VepItem, config_problems

_SENSITIVITY_STEP = 0.01  # one percentage point


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
# Computation
# --------------------------------------------------------------------------------------------


def number_text(x: float) -> str:
    """An input number as given, with thousands separators (1860000 → 1,860,000; 0.0681)."""
    return as_given(x)


def money_text(x: float) -> str:
    """An amount rounded to the fen for display (-0.00 shown as 0.00)."""
    return display(x, "yuan", minus="-")


def _p(item: VepItem, rate: float | None) -> tuple[float, str]:
    """P of an item and its formula with numbers, at ``rate`` (for rate-based methods)."""
    method = item.method
    if method == "income_capitalization":
        assert rate is not None and item.net_income is not None
        if isinstance(item.net_income, list):
            # (1+r)^-i as exp(-i·log1p(r)): 1 + r is not rounded first (r = 1e-12 keeps its digits)
            p = sum_yuan(
                a * math.exp(-i * math.log1p(rate)) for i, a in enumerate(item.net_income, 1)
            )
            terms = " + ".join(
                f"{number_text(a)}/{number_text(1 + rate)}^{i}"
                for i, a in enumerate(item.net_income, 1)
            )
            return p, f"P = sum A_i/(1+r)^i = {terms} = {money_text(p)}"
        assert item.years is not None
        a, n = item.net_income, item.years
        p = a * annuity_factor(rate, n)
        return p, (
            f"P = A/r*(1-(1+r)^-n) = {number_text(a)}/{number_text(rate)}*(1-{number_text(1 + rate)}^-{n}) = {money_text(p)}"
        )
    if method == "perpetual_income":
        assert rate is not None and isinstance(item.net_income, float | int)
        p = item.net_income / rate
        return p, f"P = a/r = {number_text(item.net_income)}/{number_text(rate)} = {money_text(p)}"
    if method == "market_comparison":
        props = item.properties or []
        p = sum_yuan((pr.premium_per_m2 or 0.0) * (pr.floor_area_m2 or 0.0) for pr in props)
        terms = " + ".join(
            f"{number_text(pr.premium_per_m2 or 0.0)}*{number_text(pr.floor_area_m2 or 0.0)}"
            for pr in props
        )
        return p, f"P = sum premium_per_m2*floor_area_m2 = {terms} = {money_text(p)}"
    if method == "residual":
        cv, dc, npf = item.completed_value, item.development_cost, item.normal_profit
        assert cv is not None and dc is not None and npf is not None
        p = cv - dc - npf
        return p, (
            "P = completed_value - development_cost - normal_profit = "
            f"{number_text(cv)} - {number_text(dc)} - {number_text(npf)} = {money_text(p)}"
        )
    if method == "cost":
        amounts = [line.amount or 0.0 for line in item.costs or []]
        p = sum_yuan(amounts)
        return p, f"P = sum costs = {' + '.join(number_text(a) for a in amounts)} = {money_text(p)}"
    raise AssertionError(f"unvalidated method {method!r}")  # _item_problems rejects it


def annuity_factor(rate: float, years: float) -> float:
    """(1 − (1+r)^−n) / r, the present value of 1 a year for n years, in the stable form
    −expm1(−n·log1p(r)) / r: the textbook form cancels to 0 when r is tiny (r = 1e-300 gave
    P = 0 instead of A·n), and loses digits when (1+r)^−n is near 1. Tends to n as r → 0 and
    to 1/r as n → ∞."""
    return -math.expm1(-years * math.log1p(rate)) / rate


def sum_yuan(values: Iterable[float]) -> float:
    """math.fsum (exact rounding), or ±inf where the sum overflows (fsum raises instead)."""
    values = list(values)
    try:
        return math.fsum(values)
    except OverflowError:
        return math.copysign(math.inf, sum(math.copysign(1.0, v) for v in values))


def _item_result(item: VepItem, index: int, rate: float | None) -> ItemResult:
    p, formula = _p(item, rate)
    v = p - item.p_prime
    formula += f"; V = P - P' = {money_text(p)} - {number_text(item.p_prime)} = {money_text(v)}"
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
    problems, _ = config_problems(config)
    if problems:
        raise InputError(problems)
    results = [_item_result(item, i, item.rate) for i, item in enumerate(config.items, 1)]
    overflow = [
        Problem(
            f"VEP item {r.index} ({r.category}, {r.method})",
            f"{'P' if not math.isfinite(r.p_yuan) else 'V = P − P′'} is too large to compute "
            "(beyond 1.8e308 yuan); check its amounts (a unit or a typo?)",
        )
        for r in results
        if not (math.isfinite(r.p_yuan) and math.isfinite(r.vep_yuan))
    ]
    totals = [sum_yuan(getattr(r, f) for r in results) for f in ("p_yuan", "p_prime_yuan")]
    if not overflow and not all(math.isfinite(t) for t in [*totals, total_yuan(results)]):
        overflow.append(Problem("VEP config", "the total of all items is too large to compute"))
    if overflow:
        raise InputError(overflow)
    return results


def total_yuan(results: list[ItemResult]) -> float:
    """Σ V of the items (exactly rounded; ±inf if it overflows)."""
    return sum_yuan(r.vep_yuan for r in results)


def rate_sensitivity(config: VepConfig, results: list[ItemResult]) -> pd.DataFrame:
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
            math.nan if any(math.isnan(v) for v in values) else sum_yuan(values)
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
