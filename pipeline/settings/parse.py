"""Shared helpers for the YAML settings files (catalog, config, coefficients, legends, VEP).

Each file is read as YAML with :func:`~pipeline.runtime.safe_yaml.load_yaml` (duplicate keys,
alias bombs, deep nesting and non-finite numbers refused, naming the line) and checked against a
pydantic model; every pydantic complaint becomes a :class:`~pipeline.errors.Problem` naming the
file and the key, so a user sees all of them at once. :data:`Number` and :data:`Count` are the
types of every number in these files: a boolean (YAML reads ``yes``/``no``/``on`` as one) or a
non-finite value (``inf``, ``1e400``) is refused, never read as 1 or infinity.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

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


def parse_model(
    model: type[M], data: Any, path: Path, what: str, docs: str = "docs/catalog-config.md"
) -> M:
    """Validate ``data`` as ``model``; raise one InputError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("must be a YAML mapping (key: value).", where=f"{what} {path}")
    try:
        return model.model_validate(data, context={"base": Path(path).resolve().parent})
    except ValidationError as exc:
        problems = explain_errors(exc, data, f"{what} {path}", model, field_word="key", docs=docs)
        raise InputError(problems) from exc


def resolve(path: str | Path, info_context: dict | None) -> Path:
    """A path from a settings file, made absolute relative to that file's folder."""
    p = Path(path).expanduser()
    if not p.is_absolute() and info_context and "base" in info_context:
        p = info_context["base"] / p
    return p


#: pydantic's tags of the branches of ``float | list[float]``; only the branch matching the
#: input's shape is reported (a list's complaint is about the list, a number's about the number)
_UNION_TAGS = {"float": "list", "list[float]": "scalar"}


def close_match(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to a misspelt ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a value may be a list of a million)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _submodels(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation (``X``, ``X | None``, ``list[X]``, ``dict[k, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _submodels(arg)]


def fields_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The field names of the (sub)model holding the key at ``loc`` (pydantic's error location)."""
    current = model
    for part in loc[:-1]:
        if isinstance(part, str) and part in current.model_fields:
            found = _submodels(current.model_fields[part].annotation)
            if found:
                current = found[0]
    return list(current.model_fields)


def explain_errors(
    error: ValidationError,
    raw: Any,
    where: str,
    model: type[BaseModel],
    *,
    field_word: str = "field",
    items: tuple[str, Callable[[int, Any], str]] | None = None,
    hints: Mapping[str, str] | None = None,
    docs: str = "",
) -> list[Problem]:
    """Turn pydantic's errors into :class:`Problem` s, one per distinct complaint.

    ``where`` names the file; each problem adds ``{field_word} 'a.b'`` (list positions 1-based
    as ``a[2]``). ``items=(key, describe)`` names an element of the top-level list ``key`` by
    ``describe(position from 1, raw element)`` instead (e.g. "item 2 (category 'material', …)").
    An unknown key gets the closest valid one and the list of valid ones; ``hints`` maps a field
    to the text said when its value has the wrong type; ``docs`` is the page to see.
    """
    problems: list[Problem] = []
    seen: set[str] = set()
    for err in error.errors():
        loc = list(err["loc"])
        head, rest, value = where, loc, raw
        if items and len(loc) >= 2 and loc[0] == items[0] and isinstance(loc[1], int):
            raw_list = raw.get(items[0]) if isinstance(raw, dict) else None
            value = raw_list[loc[1]] if isinstance(raw_list, list) else None
            head, rest = items[1](loc[1] + 1, value), loc[2:]
        parts: list[str] = []
        skip = False
        for part in rest:
            if isinstance(part, str) and part in _UNION_TAGS:
                is_list = isinstance(value, list)
                skip |= (part == "float") == is_list
                continue
            if isinstance(part, str) and ("function" in part or "[" in part):
                continue
            if isinstance(part, int) and items is not None:
                parts[-1:] = [f"{parts[-1]}[{part + 1}]"] if parts else [f"[{part + 1}]"]
            else:
                parts.append(str(part))
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list) and isinstance(part, int) and part < len(value):
                value = value[part]
            else:
                value = None
        if skip:
            continue
        key = ".".join(parts)
        full_where = f"{head}, {field_word} {key!r}" if key else (head or "config")
        given = err.get("input")
        see = f" (see {docs})" if docs else ""
        if err["type"] == "extra_forbidden":
            name = str(loc[-1]) if loc else ""
            valid = fields_at(model, loc)
            msg = f"unknown {field_word}{close_match(name, valid)}"
            msg += f"; valid {field_word}s here: " + ", ".join(valid) if valid else ""
            msg += see
        elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
            msg = f"expected a mapping of {field_word}: value, got {shown(given)}"
        elif err["type"] == "missing":
            msg = f"missing (required); add it{see}"
        elif hints and parts and parts[0] in hints and err["type"] != "value_error":
            msg = f"{hints[parts[0]]}; got {shown(given)}"
        else:
            msg = f"{err['msg'].removeprefix('Value error, ')}; got {shown(given)}"
        if f"{full_where}: {msg}" not in seen:
            seen.add(f"{full_where}: {msg}")
            problems.append(Problem(full_where, msg))
    return problems
