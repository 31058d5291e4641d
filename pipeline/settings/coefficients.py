"""Standard-forest coefficients k_i (paper Table 1), given directly or derived from ESV values, for
the codes of one land-use legend.

A coefficient file maps a legend's codes to ``{k, esv_yuan_per_ha, name}``; its optional top-level
``legend:`` names the legend (a shipped name or a legend file, relative to the coefficient file;
default ``resdc``). With ``esv_reference_code`` set, k may be omitted and is derived as
k_i = ESV_i / ESV_ref; where both are given, the derived value must round to the given k (two
decimals), which is how the paper's Table 1 was made. Codes absent from the file are not
ecological (k = 0). The shipped files for legends other than RESDC say, per class, which RESDC
class they were crosswalked to (``resdc:``).

:func:`coefficients_by_year` picks each land-use year's file: the one of the config keyed to that
year's legend, else the legend's shipped file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from pipeline.codes import RESDC_CLASSES
from pipeline.errors import InputError, Problem
from pipeline.settings.legends import (
    DEFAULT_LEGEND,
    Code,
    Legend,
    load_legend,
    shipped_coefficients,
)
from pipeline.settings.parse import Count, Number, parse_model, read_yaml

log = logging.getLogger(__name__)

#: groups whose classes are expected to carry a k (a class of these without one is warned about)
ECOLOGICAL_GROUPS = ("forest", "grassland", "water")


class _ClassEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: Number | None = Field(None, ge=0, description="standard-forest coefficient")
    esv_yuan_per_ha: Number | None = Field(None, gt=0)
    name: str | None = None
    note: str | None = None
    resdc: Count | None = Field(None, description="the RESDC class this code is crosswalked to")


class _CoefficientFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    legend: str | None = Field(None, description="the legend whose codes key `classes`")
    source: str | None = None
    esv_reference_code: int | str | None = None
    classes: dict[int | str, _ClassEntry]

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> _CoefficientFile:
        problems = _legend_problems(self, (info.context or {}).get("base"))
        bad_resdc = sorted(
            {e.resdc for e in self.classes.values() if e.resdc is not None} - set(RESDC_CLASSES)
        )
        if bad_resdc:
            problems.append(f"resdc: {bad_resdc} are not RESDC level-2 codes")
        ref = self.esv_reference_code
        ref_esv = None
        if ref is not None:
            ref_esv = self.classes.get(ref, _ClassEntry()).esv_yuan_per_ha
            if ref_esv is None:
                problems.append(f"esv_reference_code {ref} has no esv_yuan_per_ha in classes")
        for code, e in sorted(self.classes.items(), key=lambda kv: str(kv[0])):
            if e.k is None and (ref_esv is None or e.esv_yuan_per_ha is None):
                problems.append(
                    f"class {code}: give k, or esv_yuan_per_ha together with esv_reference_code"
                )
            elif e.k is not None and ref_esv is not None and e.esv_yuan_per_ha is not None:
                derived = e.esv_yuan_per_ha / ref_esv
                if round(derived, 2) != round(e.k, 2):
                    problems.append(
                        f"class {code}: k = {e.k} but ESV {e.esv_yuan_per_ha:g} / "
                        f"{ref_esv:g} = {derived:.4f}; make them agree"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _legend_problems(parsed: _CoefficientFile, base: Path | None) -> list[str]:
    """The codes of ``classes`` that are not of the file's legend (kind or class)."""
    legend = load_legend(parsed.legend, base, where="coefficients, key 'legend'")
    wrong_kind = [c for c in parsed.classes if isinstance(c, str) != legend.text]
    if wrong_kind:
        shown = ", ".join(repr(c) for c in wrong_kind[:10])
        fix = (
            'quote them ("0301": …); unquoted, YAML reads 0301 as the octal number 193 and 0101 '
            "as 65"
            if legend.text
            else "write them without quotes"
        )
        return [
            f"codes {shown} are not of the kind of {legend.label()}, whose codes are "
            f"{'text' if legend.text else 'numbers'}: {fix}"
        ]
    unknown = sorted(c for c in parsed.classes if c not in legend.classes)
    if not unknown:
        return []
    if legend.key == DEFAULT_LEGEND:
        return [f"codes {unknown} are not RESDC level-2 codes (valid: {sorted(RESDC_CLASSES)})"]
    return [
        f"codes {legend.show_all(unknown)} are not classes of {legend.label()} (its codes: "
        f"{legend.show_all(legend.classes)}). Fix the codes, or set 'legend:' to the legend "
        "they belong to"
    ]


@dataclass(frozen=True)
class Coefficients:
    """k per code of one legend (ecological classes only), and where they came from."""

    k: dict[Code, float]
    names: dict[Code, str]
    path: Path
    source: str | None = None
    legend: Legend | None = None  # None only for files made in code (tests); loaded: always set
    #: the RESDC class (Table 1 row) each code's k was taken from, where the file says (``resdc:``)
    rows: dict[Code, int] = field(default_factory=dict)

    def of(self, code: Code) -> float:
        if isinstance(code, str):
            return self.k.get(code, 0.0)
        return self.k.get(int(code), 0.0)


def load_coefficients(path: str | Path) -> Coefficients:
    """Read a coefficient file; k is taken as given, else derived from the ESV column. Every code
    must be one of its legend's classes."""
    path = Path(path)
    parsed = parse_model(_CoefficientFile, read_yaml(path, "coefficients"), path, "coefficients")
    legend = load_legend(parsed.legend, path.resolve().parent)
    ref = parsed.esv_reference_code
    k: dict[Code, float] = {}
    for code, e in parsed.classes.items():
        if e.k is not None:
            k[code] = float(e.k)
        else:
            # k_i = ESV_i / ESV_ref, e.g. shrubland 34858 / 39065 = 0.892
            k[code] = float(e.esv_yuan_per_ha) / float(parsed.classes[ref].esv_yuan_per_ha)
    names = {c: (e.name or legend.classes[c].name) for c, e in parsed.classes.items()}
    rows = {c: int(e.resdc) for c, e in parsed.classes.items() if e.resdc is not None}
    return Coefficients(k=k, names=names, path=path, source=parsed.source, legend=legend, rows=rows)


def coefficients_by_year(
    legends: Mapping[int, Legend], files: Iterable[Coefficients]
) -> dict[int, Coefficients]:
    """Each land-use year's coefficients: the file (of the config's ``coefficients:``) keyed to
    the year's legend, else the legend's shipped file. A file keyed to a legend no year uses, two
    files for one legend, or a legend of the user's own with no file, is an error; a class of
    group forest, grassland or water without a k is a warning."""
    files = list(files)
    problems = []
    by_legend: dict[str, Coefficients] = {}
    for c in files:
        key = c.legend.key if c.legend is not None else DEFAULT_LEGEND
        if key in by_legend:
            problems.append(
                Problem(
                    f"coefficients {c.path}",
                    f"{by_legend[key].path} is keyed to the same legend ({key}); give one file "
                    "per legend",
                )
            )
        by_legend[key] = c
    used = {leg.key for leg in legends.values()}
    for key, c in by_legend.items():
        if key not in used:
            in_use = ", ".join(sorted(used))
            problems.append(
                Problem(
                    f"coefficients {c.path}",
                    f"is keyed to {c.legend.label() if c.legend else key}, which no land-use year "
                    f"of the catalog uses (they use: {in_use}). Set its 'legend:' to the legend "
                    "of the data, or name the legend in the catalog ('legend:' of a year).",
                )
            )
    out: dict[int, Coefficients] = {}
    for year, leg in sorted(legends.items()):
        if leg.key in by_legend:
            out[year] = by_legend[leg.key]
            continue
        shipped = shipped_coefficients(leg)
        if shipped is None:
            problems.append(
                Problem(
                    f"landuse {year}",
                    f"{leg.label()} has no shipped coefficients: add a coefficient file with "
                    f"'legend: {leg.path}' to the config's 'coefficients:' (a list may name one "
                    "file per legend).",
                )
            )
            continue
        loaded = next((c for c in out.values() if c.path == shipped), None)
        out[year] = loaded or load_coefficients(shipped)
    if problems:
        raise InputError(problems)
    for c in {id(c): c for c in out.values()}.values():
        _warn_missing_k(c)
    return out


def _warn_missing_k(c: Coefficients) -> None:
    leg = c.legend
    if leg is None:
        return
    missing = [code for code, cls in leg.classes.items()
               if cls.group in ECOLOGICAL_GROUPS and code not in c.k]  # fmt: skip
    if missing:
        listing = ", ".join(
            f"{leg.show(code)} {leg.classes[code].name} ({leg.classes[code].group})"
            for code in missing
        )
        log.warning(
            "coefficients %s: classes of %s in group forest, grassland or water have no k, so "
            "they count as not ecological (k = 0): %s. Give them a k (or k: 0 to say so).",
            c.path,
            leg.label(),
            listing,
        )
