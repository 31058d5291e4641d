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
    """Parse a YAML file; a missing or malformed file is an :class:`InputError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found. Check the path: {path}", where=f"{what} {path}")
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(
            f"is not valid UTF-8 YAML ({exc}). Fix the syntax at the position shown.",
            where=f"{what} {path}",
        ) from exc


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
                msg = "is not a known key; check its spelling (see README, 'Catalog' and 'Config')"
            problems.append(Problem(f"{what} {path}, key '{key}'", msg))
        raise InputError(problems) from exc


def resolve(path: str | Path, info_context: dict | None) -> Path:
    """A path from a settings file, made absolute relative to that file's folder."""
    p = Path(path).expanduser()
    if not p.is_absolute() and info_context and "base" in info_context:
        p = info_context["base"] / p
    return p
