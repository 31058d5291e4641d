"""Shared helpers for the YAML settings files (catalog, config, coefficients).

Each file is read as YAML and checked against a pydantic model; every pydantic complaint becomes a
:class:`~pipeline.errors.Problem` naming the file and the key, so a user sees all of them at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.errors import InputError, Problem

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
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"is not valid YAML{at}: {problem}", where=where) from exc


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
