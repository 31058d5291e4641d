"""The one number formatter: how every number a person reads is rounded and written.

Used by the HTML report, the CSV and XLSX tables, the map legends and VEP alike, so that one
value reads the same everywhere. The rules (docs/method.md §3):

- ``count`` — integers: ``199``, ``2,848``;
- ``ha``, ``km2``, ``yuan`` — to 0.01: ``1,234.57``;
- ``coef`` — coefficients and ratios (k, G_t, P_t, shares) to 0.01; a non-zero value below 0.01
  keeps two significant figures (``0.0034``) so that it does not read as 0;
- ``km`` — distances to 0.1;
- ``text`` — left as it is.

Negative numbers take the true minus sign (−) in text for people (HTML, legends); CSV and XLSX
hold the rounded number itself. ``-0.00`` reads ``0.00``. Missing values (None, NaN, ±inf) read as
an empty string. Full precision stays in the GeoPackage. Hand-written: Python's format mini
language does the work; a library (babel) would add locale machinery that a fixed Chinese/English
report does not need.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

__all__ = [
    "DIGITS",
    "XLSX_FORMATS",
    "Kind",
    "as_given",
    "display",
    "kind_of",
    "legend_bound",
    "rounded",
]

Kind = Literal["count", "ha", "km2", "yuan", "coef", "km", "text"]

#: decimals shown per kind
DIGITS: dict[str, int] = {"count": 0, "ha": 2, "km2": 2, "yuan": 2, "coef": 2, "km": 1}
#: the matching XLSX number formats (thousands separators, fixed decimals)
XLSX_FORMATS: dict[str, str] = {
    "count": "#,##0",
    "ha": "#,##0.00",
    "km2": "#,##0.00",
    "yuan": "#,##0.00",
    "coef": "0.00##",
    "km": "#,##0.0",
}
MINUS = "\u2212"


def _finite(value: object) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _coef_digits(x: float) -> int:
    """0.01 for |x| ≥ 0.01; below, enough decimals for two significant figures (0.0034 → 4)."""
    if x == 0 or abs(x) >= 0.01:
        return DIGITS["coef"]
    return min(12, 1 - math.floor(math.log10(abs(x))))


def rounded(value: object, kind: str) -> object:
    """The value as a table cell holds it: rounded per ``kind`` (an int for counts); text and
    missing values unchanged."""
    x = _finite(value)
    if x is None or kind == "text":
        return value
    if kind == "count":
        return round(x)
    digits = _coef_digits(x) if kind == "coef" else DIGITS.get(kind, 2)
    out = round(x, digits)
    return 0.0 if out == 0 else out  # no -0.0


def display(value: object, kind: str = "ha", *, minus: str = MINUS) -> str:
    """``value`` as a person reads it: rounded per ``kind``, thousands separators, true minus."""
    x = _finite(value)
    if x is None:
        if value is None or isinstance(value, numbers.Real):
            return ""
        return str(value)
    if kind == "text":
        return str(value)
    if kind == "count":
        text = f"{round(x):,}"
    else:
        digits = _coef_digits(x) if kind == "coef" else DIGITS.get(kind, 2)
        text = f"{x:,.{digits}f}"
        if float(text.replace(",", "")) == 0:
            text = text.lstrip("-")
    return text.replace("-", minus)


def as_given(value: float) -> str:
    """An input number as the user wrote it, with thousands separators: 1860000 → 1,860,000;
    0.0681 stays 0.0681 (for formulas written out with their numbers)."""
    x = float(value)
    if x.is_integer() and abs(x) < 1e16:
        return f"{int(x):,}"
    text = repr(abs(x))
    if "e" in text or "." not in text:
        return repr(x)
    whole, frac = text.split(".")
    return f"{'-' if x < 0 else ''}{int(whole):,}.{frac}"


def legend_bound(x: float) -> str:
    """A class bound of a map legend: thousands separators, no trailing zeros, true minus."""
    if x == int(x) and abs(x) < 1e15:
        text = f"{int(x):,}"
    else:
        text = f"{x:,.6f}".rstrip("0").rstrip(".")
    return text.replace("-", MINUS)


_COUNT_KEYS = {"rank", "year", "n", "cap_binding", "uncertainty_draws", "uncertainty_seed"}
_COEF_KEYS = {"k", "gdp_coef", "pop_coef", "p_demand", "coverage_base", "coverage_target"}


def kind_of(key: str) -> str:
    """The display kind of a column or summary key, from its name: ``n_*`` and a few others
    count; ``*_ha`` hectares; ``*_yuan`` money; ``*_km2`` km²; ``*_km`` km; coefficients and
    shares; ``*_p05/_p50/_p95`` as their base key. Anything else is text."""
    key = str(key)
    for suffix in ("_p05", "_p50", "_p95"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    if key in _COUNT_KEYS or key.startswith("n_") or key.endswith("_code"):
        return "count"
    if key in _COEF_KEYS or key.endswith("_coef"):
        return "coef"
    if key.endswith("_km2"):
        return "km2"
    if key.endswith("_km"):
        return "km"
    if key.endswith("_yuan") or "_yuan_" in key:  # before hectares: price_yuan_per_ha
        return "yuan"
    if key.endswith("_ha") or key.endswith("_ha_per_km2"):
        return "ha"
    return "text"
