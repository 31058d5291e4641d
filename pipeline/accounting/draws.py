"""The coefficients the Monte Carlo draws (:mod:`pipeline.accounting.uncertainty`): which k vary,
which of them move together, and the ranges they are drawn from (inverse CDF of uniform numbers,
hand-written: two closed forms, no library needed).

The uncertainty lies in the paper's coefficients (Table 1), so one uniform number u is drawn per
**Table 1 row**, and every code whose k was taken from that row maps the same u through its own
range. A code's row is the RESDC code itself for the RESDC legend, or the ``resdc:`` its
coefficient file gives (every shipped file of another legend says it per class). A code with no
such link draws on its own, keyed by (legend, code). So with two years in two legends (二调 2009
against 三调 2019) 二调 031 有林地 and 三调 0301 乔木林地, both taken from row 21 有林地 at k = 1.00,
get the same k in every draw: land that merely changed legend changes no voucher.

The Monte Carlo's area-difference matrix has one column per (legend, code): with one legend the
year's codes (A_t − B per code); with two legends the base year's codes (−B) and then the target
year's (+A_t), so that Σ_j A_j,t k_j,d − Σ_i B_i k_i,d = ΔM + Σ_j A_j,t (k_j,d − k_j) −
Σ_i B_i (k_i,d − k_i).

**Layout** of the uniform numbers (reproducible: the same seed gives the same draws whatever the
data): one column per draw key, in this order — the Table 1 rows in ascending order, then the
unlinked codes ordered by legend name and then code (numbers before text) — followed by the
uncertainty module's own columns. With one RESDC legend the keys are the codes in ascending
order, as before the two-legend case existed.

**Explicit ranges** (``uncertainty.coefficients``) are keyed by code, as written in the legend
(21, "0301"). With two legends in use a code may be prefixed by its legend's name,
``"sandiao:0301"`` (the name as the ``legend`` column of class_areas writes it: a shipped name, or
the legend file's name); a bare code is taken when it is a class of exactly one of the two
legends, else the run stops naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError
from pipeline.settings.coefficients import Coefficients
from pipeline.settings.config import UncertaintyConfig, ValueRange
from pipeline.settings.legends import DEFAULT_LEGEND, Code, Legend

__all__ = ["CoefficientDraws", "checked_bounds", "inverse_cdf", "plan_draws"]

_WHERE = "config, key 'uncertainty.coefficients'"


@dataclass(frozen=True)
class _Side:
    """One legend's coefficients as the Monte Carlo sees them."""

    tag: str  # the legend's name as output tables write it ("" for a bare mapping of k)
    label: str  # the legend as messages name it
    k: Mapping[Code, float]
    rows: Mapping[Code, int]  # code → Table 1 row (RESDC class) its k was taken from
    legend: Legend | None  # None: a bare mapping (every code accepted)
    table1: bool  # the codes are Table 1 rows themselves (RESDC)

    def row(self, code: Code) -> int | None:
        if code in self.rows:
            return self.rows[code]
        return code if self.table1 and isinstance(code, int) else None

    def key(self, code: Code) -> tuple:
        """The draw key: (0, row) for a code linked to a Table 1 row, else (1, legend, code)."""
        row = self.row(code)
        return (0, row) if row is not None else (1, self.tag, _sort_key(code))

    def code(self, value: Code) -> Code:
        """A key of the config as this legend's code ("21" → 21 for a legend of numbers)."""
        if self.legend is not None:
            return self.legend.codes_of([value])[0]
        if (
            isinstance(value, str)
            and value.isdigit()
            and not any(isinstance(c, str) for c in self.k)
        ):
            return int(value)
        return value

    def has(self, code: Code) -> bool:
        return self.legend is None or code in self.legend.classes

    @property
    def text(self) -> bool:
        if self.legend is not None:
            return self.legend.text
        return any(isinstance(c, str) for c in self.k)


@dataclass(frozen=True)
class CoefficientDraws:
    """The k the Monte Carlo varies. ``columns``: (side, code) per column of the area-difference
    matrix (side 0 only with one legend; with two, side 0 is the base year's legend, side 1 the
    target year's); ``k0`` their deterministic k; ``draw_column`` the column of the uniform
    matrix each one takes its u from; ``n_keys`` the number of such columns."""

    sides: tuple[_Side, ...]
    columns: tuple[tuple[int, Code], ...]
    k0: np.ndarray
    draw_column: np.ndarray
    n_keys: int
    ranges: tuple[tuple[ValueRange | None, str], ...]

    def codes(self, side: int) -> list[Code]:
        return [c for s, c in self.columns if s == side]

    def text(self, side: int) -> bool:
        return self.sides[side].text

    def perturbations(self, u: np.ndarray, cfg: UncertaintyConfig) -> np.ndarray:
        """k_j,d − k_j per draw (rows) and column; exactly 0 for a zero-width range."""
        dk = np.empty((u.shape[0], len(self.columns)))
        for j, (r, where) in enumerate(self.ranges):
            r = r or ValueRange(spread=cfg.coefficient_spread)
            dist = r.distribution or cfg.distribution
            low, high, peak = checked_bounds(r, self.k0[j], dist, where)
            dk[:, j] = inverse_cdf(u[:, self.draw_column[j]], low, high, peak, dist)
            dk[:, j] -= self.k0[j]
        return dk


def plan_draws(
    k: Mapping[Code, float] | Coefficients | tuple[Coefficients, Coefficients],
    cfg: UncertaintyConfig,
) -> CoefficientDraws:
    """The columns, draw keys and ranges for ``k``: one mapping or table of k (one legend), or
    the (base, target) years' tables (two legends when theirs differ)."""
    sides = _sides(k)
    explicit = _explicit_ranges(cfg, sides)
    columns = [
        (s, code)
        for s, side in enumerate(sides)
        for code in sorted(set(side.k) | {c for (t, c) in explicit if t == s}, key=_sort_key)
    ]
    keys = [sides[s].key(code) for s, code in columns]
    order = {key: i for i, key in enumerate(sorted(set(keys)))}
    ranges = tuple(
        explicit.get((s, code), (None, f"uncertainty, coefficients.{code}")) for s, code in columns
    )
    return CoefficientDraws(
        sides=tuple(sides),
        columns=tuple(columns),
        k0=np.array([float(sides[s].k.get(code, 0.0)) for s, code in columns]),
        draw_column=np.array([order[key] for key in keys], dtype=np.int64),
        n_keys=len(order),
        ranges=ranges,
    )


def _sides(k: Mapping[Code, float] | Coefficients | tuple[Coefficients, Coefficients]) -> list:
    if isinstance(k, Mapping):
        return [_Side("", "the coefficient table", dict(k), {}, None, table1=True)]
    base, target = (k, k) if isinstance(k, Coefficients) else k
    if _legend_key(base) == _legend_key(target):
        return [_side(target)]
    return [_side(base), _side(target)]


def _legend_key(c: Coefficients) -> str:
    return c.legend.key if c.legend is not None else DEFAULT_LEGEND


def _side(c: Coefficients) -> _Side:
    leg = c.legend
    return _Side(
        tag=leg.tag if leg is not None else DEFAULT_LEGEND,
        label=leg.label() if leg is not None else "the coefficient table",
        k=c.k,
        rows=c.rows,
        legend=leg,
        table1=_legend_key(c) == DEFAULT_LEGEND,
    )


def _explicit_ranges(
    cfg: UncertaintyConfig, sides: list[_Side]
) -> dict[tuple[int, Code], tuple[ValueRange, str]]:
    """The config's per-code ranges by (side, code); a key that names no code of the legends in
    use, or (two legends, no prefix) a code of both, is an error naming it."""
    out: dict[tuple[int, Code], tuple[ValueRange, str]] = {}
    problems = []
    two = len(sides) > 1
    for key, r in cfg.coefficients.items():
        shown = f'"{key}"' if isinstance(key, str) else str(key)
        value: Code = key
        candidates = list(range(len(sides)))
        if isinstance(key, str) and ":" in key:
            name, _, value = key.partition(":")
            candidates = [s for s in candidates if sides[s].tag == name]
            if not candidates:
                in_use = ", ".join(f"'{s.tag}'" for s in sides if s.tag)
                problems.append(
                    f"{shown}: no legend '{name}' is in use (in use: {in_use}); write "
                    "LEGEND:CODE with one of them"
                )
                continue
        found = [(s, sides[s].code(value)) for s in candidates]
        found = [(s, c) for s, c in found if sides[s].has(c)]
        if len(found) > 1:
            options = " or ".join(f'"{sides[s].tag}:{c}"' for s, c in found)
            problems.append(
                f"{shown} is a code of both {sides[0].label} and {sides[1].label}; say which: "
                f"{options}"
            )
        elif not found:
            legends = " or ".join(sides[s].label for s in candidates)
            hint = ' (prefix it with its legend\'s name, e.g. "sandiao:0301")' if two else ""
            if isinstance(value, int) and any(sides[s].text for s in candidates):
                hint += (
                    '; text codes are written in quotes ("0301"): unquoted, YAML reads 0301 as '
                    "the number 301 (or as octal)"
                )
            problems.append(f"{shown} is no class of {legends}{hint}")
        elif found[0] in out:
            problems.append(f"{shown}: the range of this code is given twice")
        else:
            out[found[0]] = (r, f"uncertainty, coefficients.{key}")
    if problems:
        raise InputError("; ".join(problems), where=_WHERE)
    return out


def _sort_key(code: Code) -> tuple:
    return (0, code, "") if isinstance(code, int) else (1, 0, code)


def inverse_cdf(
    u: np.ndarray, low: float, high: float, peak: float, distribution: str
) -> np.ndarray:
    """Uniform numbers u ∈ [0, 1) → values on [low, high]; a zero-width range gives ``low``."""
    width = high - low
    if width == 0:
        return np.full(u.shape, float(low))
    if distribution == "uniform":
        return low + width * u
    # triangular: F(x) = (x − a)² / ((b − a)(c − a)) below the peak c, 1 − (b − x)² / ((b − a)(b − c))
    # above it
    cut = (peak - low) / width
    left = low + np.sqrt(u * width * (peak - low))
    right = high - np.sqrt((1 - u) * width * (high - peak))
    return np.where(u < cut, left, right)


def checked_bounds(
    r: ValueRange, value: float, distribution: str, where: str
) -> tuple[float, float, float]:
    """(low, high, peak) of ``r`` around ``value``; a triangular range must contain its peak."""
    low, high, peak = r.bounds(value)
    if distribution == "triangular" and not low <= peak <= high:
        raise InputError(
            f"the triangular range [{low:g}, {high:g}] does not contain its peak, the "
            f"deterministic value {peak:g}; widen the range or give mode",
            where=where,
        )
    return low, high, peak
