"""Shared helpers for the YAML settings files (catalog, config, coefficients, legends, VEP).

Each file is read as YAML with :func:`~pipeline.runtime.safe_yaml.load_yaml` (duplicate keys,
alias bombs, deep nesting and non-finite numbers refused, naming the line) and checked against a
pydantic model; every pydantic complaint becomes a :class:`~pipeline.errors.Problem` naming the
file and the key, so a user sees all of them at once. :data:`Number` and :data:`Count` are the
types of every number in these files: a boolean (YAML reads ``yes``/``no``/``on`` as one) or a
non-finite value (``inf``, ``1e400``) is refused, never read as 1 or infinity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError

from pipeline.errors import InputError, Problem
from pipeline.runtime.safe_yaml import load_yaml

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, what: str) -> Any:
    """Parse a YAML file (UTF-8, a BOM allowed); a missing, unreadable or malformed file is an
    :class:`InputError` naming it and, for a syntax error, the line and column."""
    path = Path(path)
    where = f"{what} {path}"
    if not path.exists():
        raise InputError(f"file not found. Check the path: {path}", where=where)
    if not path.is_file():
        raise InputError("is not a file; give the path of a YAML file", where=where)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text ({exc.reason}); save it as UTF-8", where) from exc
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", where=where) from exc
    try:
        return load_yaml(text, where)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"is not valid YAML{at}: {problem}", where=where) from exc


def _no_bool(value: Any) -> Any:
    """YAML turns yes/no/true into booleans; a boolean is never a valid amount, rate or count."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {value!r} (yes/no/true/false)")
    return value


def _finite(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite number, got {value!r}")
    return value


#: a number of a settings file: finite, not a boolean
Number = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_finite)]
#: a whole number of a settings file, not a boolean
Count = Annotated[int, BeforeValidator(_no_bool)]


def parse_model(model: type[M], data: Any, path: Path, what: str) -> M:
    """Validate ``data`` as ``model``; raise one InputError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("must be a YAML mapping (key: value).", where=f"{what} {path}")
    try:
        return model.model_validate(data, context={"base": Path(path).resolve().parent})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "is required but missing; add it"
            elif err["type"] == "extra_forbidden":
                msg = "is not a known key; check its spelling (see docs/catalog-config.md)"
            problems.append(Problem(f"{what} {path}, key '{key}'", msg))
        raise InputError(problems) from exc


def resolve(path: str | Path, info_context: dict | None) -> Path:
    """A path from a settings file, made absolute relative to that file's folder."""
    p = Path(path).expanduser()
    if not p.is_absolute() and info_context and "base" in info_context:
        p = info_context["base"] / p
    return p
