"""Land-use legends: which codes a land-use map holds, their names and their groups.

A legend file (YAML; see README, 'Your land-use data', and docs/legends.md)::

    name: MODIS IGBP (MCD12C1)
    source: "where the table comes from"     # optional
    nodata: [255]                            # values that count in no class (optional)
    roll_up: {111: 11}                       # codes read as another class (optional)
    classes:
      1: {name: Evergreen Needleleaf Forests, group: forest}
      "0301": {name: 乔木林地, group: forest}   # codes may be text, kept exactly

Codes are either all numbers or all text. Text codes are kept exactly: "0301" is not 301, and a
code is shown as it is written in the file (:meth:`Legend.show`). ``group`` is one of
:data:`GROUPS`; it gives the level-1 transfer matrix, the report's class table and map colours.

Shipped legends (:data:`SHIPPED`) live in ``pipeline/data/legends/<name>.yaml`` and are named by
their file name; any other legend is given by its path. :func:`load_legend` reads either.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.errors import InputError
from pipeline.settings.parse import parse_model, read_yaml

__all__ = [
    "DEFAULT_LEGEND",
    "GROUPS",
    "GROUP_NAMES_ZH",
    "SHIPPED",
    "Code",
    "Legend",
    "LegendClass",
    "load_legend",
    "shipped_coefficients",
]

#: a class code: a number, or text kept exactly
Code = int | str
#: the six groups every class belongs to (RESDC's level-1 classes)
GROUPS = ("cropland", "forest", "grassland", "water", "built-up", "unused")
GROUP_NAMES_ZH = {
    "cropland": "耕地",
    "forest": "林地",
    "grassland": "草地",
    "water": "水域",
    "built-up": "建设用地",
    "unused": "未利用地",
}
_DATA = Path(__file__).resolve().parent.parent / "data"
#: legends shipped with the package, by the name a catalog gives
SHIPPED = (
    "resdc",
    "sandiao",
    "gbt21010_2007",
    "clcd",
    "globeland30",
    "esa_worldcover",
    "modis_igbp",
)
DEFAULT_LEGEND = "resdc"


class _ClassModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="class name")
    group: Literal["cropland", "forest", "grassland", "water", "built-up", "unused"]
    name_zh: str | None = Field(None, description="Chinese name, where `name` is not")
    note: str | None = None


class _LegendFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the legend's title")
    source: str | None = Field(None, description="where the class table comes from")
    nodata: list[int | str] = Field(default_factory=list, description="codes of no class")
    roll_up: dict[int | str, int | str] = Field(
        default_factory=dict, description="codes read as another class"
    )
    classes: dict[int | str, _ClassModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> _LegendFile:
        problems = []
        kinds = {type(c) for c in self.classes}
        if len(kinds) > 1:
            problems.append(
                'class codes must be all numbers or all text (quote every code, e.g. "0301", '
                "or none)"
            )
        text = str in kinds
        for what, codes in (("nodata", self.nodata), ("roll_up", list(self.roll_up))):
            wrong = [c for c in codes if isinstance(c, str) != text]
            if wrong:
                problems.append(f"{what} codes {_show_all(wrong)} are not of the classes' kind")
        both = sorted(set(self.nodata) & set(self.classes), key=str)
        if both:
            problems.append(f"codes {_show_all(both)} are both classes and nodata")
        for src, dst in self.roll_up.items():
            if dst not in self.classes:
                problems.append(f"roll_up {_show(src)} → {_show(dst)}: {_show(dst)} is no class")
            if src in self.classes:
                problems.append(f"roll_up {_show(src)}: it is a class already")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _show(code: Code) -> str:
    """A code as it is written in a legend file: text quoted ("0301"), numbers bare (21)."""
    return f'"{code}"' if isinstance(code, str) else str(code)


def _show_all(codes: Iterable[Code]) -> str:
    return ", ".join(_show(c) for c in codes)


@dataclass(frozen=True)
class LegendClass:
    code: Code
    name: str
    group: str
    name_zh: str | None = None


@dataclass(frozen=True)
class Legend:
    """A land-use legend: its classes, nodata codes and roll-ups (see the module text)."""

    key: str  # the shipped name, or the legend file's resolved path
    name: str
    path: Path
    classes: dict[Code, LegendClass]
    nodata: frozenset[Code] = frozenset()
    roll_up: dict[Code, Code] = field(default_factory=dict)
    source: str | None = None

    @property
    def text(self) -> bool:
        """Whether the codes are text (then they are kept exactly, leading zeros and all)."""
        return isinstance(next(iter(self.classes)), str)

    @property
    def shipped(self) -> bool:
        return self.key in SHIPPED

    def label(self) -> str:
        """How messages name the legend: ``legend 'sandiao' (三调 …)`` or its path."""
        return f"legend '{self.key}' ({self.name})" if self.shipped else f"legend {self.path}"

    def show(self, code: Code) -> str:
        """A code as it is written in the legend file ("0301", 21)."""
        return _show(code)

    def show_all(self, codes: Iterable[Code]) -> str:
        return _show_all(codes)

    def group(self, code: Code) -> str:
        return self.classes[code].group

    @property
    def tag(self) -> str:
        """The legend as output tables name it: the shipped name, else the file's name."""
        return self.key if self.shipped else self.path.name

    @functools.cached_property
    def _internal(self) -> dict[Code, int]:
        """Class code → the int16 number the zonal stage works with (0 is "no data"): the code
        itself for a legend of numbers 1–32767 (RESDC: 11–67, as before), else its position
        (1, 2, …) in the sorted class list."""
        codes = sorted(self.classes, key=_sort_key)
        if not self.text and all(1 <= int(c) <= 32767 for c in codes):
            return {c: int(c) for c in codes}
        return {c: i + 1 for i, c in enumerate(codes)}

    @property
    def no_data(self) -> Code:
        """How a missing class is written in output tables: 0 (as before), -1 for a legend
        whose class 0 is real (MODIS: water), "" for text codes."""
        if self.text:
            return ""
        return -1 if 0 in self.classes else 0

    def to_internal(self, codes: Iterable[Code]) -> np.ndarray:
        """Class codes (after roll-up; every one a class) as the zonal stage's int16 numbers."""
        m = self._internal
        return np.fromiter((m[c] for c in codes), dtype=np.int16)

    def from_internal(self, numbers: Iterable[int]) -> list[Code]:
        """The zonal stage's numbers back as class codes; 0 → :attr:`no_data`."""
        back = {v: c for c, v in self._internal.items()}
        nd = self.no_data
        return [back[int(n)] if int(n) != 0 else nd for n in numbers]

    def codes_of(self, values: Iterable) -> list[Code]:
        """Raw values of a code field or raster as this legend's codes, before roll-up: text
        for a text legend (numbers written plainly: 101 → "101", 21.0 → "21"), numbers for a
        numeric one (whole-number text such as "21" → 21; other text stays text and so is no
        code)."""
        return [_as_code(v, self.text) for v in values]

    def normalise(self, codes: Iterable[Code]) -> list[Code]:
        """Codes after the legend's roll-up (111 → 11)."""
        r = self.roll_up
        return [r.get(c, c) for c in codes]

    def unknown(self, codes: Iterable[Code]) -> list[Code]:
        """Codes (after roll-up) that are neither a class nor nodata, sorted as shown."""
        known = set(self.classes) | set(self.nodata)
        return sorted({c for c in self.normalise(codes) if c not in known}, key=_sort_key)

    def unknown_message(self, counts: dict[Code, float], unit: str) -> str:
        """The error text for codes in the data that the legend does not hold; ``counts`` maps
        each such code to how much of it there is (features, pixels)."""
        listing = ", ".join(
            f"{_show(c)} ({n:,.0f} {unit})" for c, n in sorted(counts.items(), key=lambda kv:
                                                               _sort_key(kv[0]))[:30]
        )  # fmt: skip
        more = f" and {len(counts) - 30} more" if len(counts) > 30 else ""
        valid = _show_all(sorted(self.classes, key=_sort_key))
        hint = ""
        if self.text and any(isinstance(c, str) and c.isdigit() for c in counts):
            hint = (
                ' If leading zeros were lost (101 for "0101"), the code field was stored as a '
                "number: use the survey's own text field (DLBM)."
            )
        elif not self.text and any(isinstance(c, str) for c in counts):
            hint = " The data holds text codes: name a legend with text codes (e.g. 'sandiao')."
        return (
            f"codes that are not in {self.label()}: {listing}{more}. Its codes: {valid}"
            f"{' (nodata: ' + _show_all(sorted(self.nodata, key=_sort_key)) + ')' if self.nodata else ''}."
            f"{hint} Name the legend the data uses ('legend:' in the catalog), or give a legend "
            "file of your own."
        )


def _sort_key(code: Code) -> tuple:
    return (0, code, "") if isinstance(code, int) else (1, 0, code)


def _as_code(value: object, text: bool) -> Code:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value)) if text else int(value)
    s = str(value).strip()
    if text:
        return s
    if s.lstrip("-").isdigit() and str(int(s)) == s:
        return int(s)
    return s


@functools.lru_cache(maxsize=64)
def _load(path: Path, key: str) -> Legend:
    parsed = parse_model(_LegendFile, read_yaml(path, "legend"), path, "legend")
    classes = {
        code: LegendClass(code, c.name, c.group, c.name_zh) for code, c in parsed.classes.items()
    }
    return Legend(
        key=key,
        name=parsed.name,
        path=path,
        classes=classes,
        nodata=frozenset(parsed.nodata),
        roll_up=dict(parsed.roll_up),
        source=parsed.source,
    )


def load_legend(ref: str | Path | None, base: Path | None = None, where: str = "catalog") -> Legend:
    """The legend named ``ref``: a shipped name (:data:`SHIPPED`; None: ``resdc``), or the path
    of a legend file, relative to ``base`` (the folder of the file that names it)."""
    ref = DEFAULT_LEGEND if ref is None else ref
    text = str(ref)
    if text in SHIPPED:
        return _load(_DATA / "legends" / f"{text}.yaml", text)
    p = Path(text).expanduser()
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    if p.suffix.lower() in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise InputError(
                f"legend file {p} not found. Fix the path (relative to the file that names it) "
                f"or name a shipped legend: {', '.join(SHIPPED)}.",
                where=where,
            )
        p = p.resolve()
        return _load(p, str(p))
    raise InputError(
        f"'{text}' is no shipped legend ({', '.join(SHIPPED)}) and no legend file (a path "
        "ending in .yaml). Check its spelling.",
        where=where,
    )


def shipped_coefficients(legend: Legend) -> Path | None:
    """The coefficient file shipped for a shipped legend (resdc: Gu, Tang & Wang's Table 1);
    None for a legend of the user's own."""
    if legend.key == DEFAULT_LEGEND:
        return _DATA / "gu2022.yaml"
    if legend.shipped:
        return _DATA / "coefficients" / f"{legend.key}.yaml"
    return None
