"""A small YAML writer for the catalog and config the plugin writes (QGIS's Python need not have
PyYAML). Block mappings, flow lists of scalars, strings always double-quoted (JSON escapes are
YAML escapes), floats always with a decimal point (YAML 1.1 reads ``1e-05`` as text)."""

from __future__ import annotations

import json
import math
import re

# characters YAML does not allow raw in a stream (PyYAML's reader: printable = tab, LF, CR,
# 0x20–0x7E, 0x85, 0xA0–0xD7FF, 0xE000–0xFFFD, 0x10000–0x10FFFF)
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _escape(match: re.Match) -> str:
    code = ord(match.group(0))
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, str):
        return _NOT_PRINTABLE.sub(_escape, json.dumps(value, ensure_ascii=False))
    raise TypeError(f"cannot write {type(value).__name__} to YAML")


def _key(key) -> str:
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise TypeError(f"YAML key {key!r}: only text and integers")
    if isinstance(key, int) or (_PLAIN_KEY.match(key) and key.lower() not in _RESERVED):
        return str(key)
    return scalar(key)


_RESERVED = {"null", "true", "false", "yes", "no", "on", "off", "y", "n", "none"}


def dump(data: dict, header: str = "") -> str:
    """``data`` (nested dicts; lists of scalars; scalars) as YAML text, ``header`` as comments."""
    lines = [f"# {ln}".rstrip() for ln in header.splitlines()]
    _mapping(data, 0, lines)
    return "\n".join(lines) + "\n"


def _mapping(data: dict, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for key, value in data.items():
        if isinstance(value, dict):
            if value:
                lines.append(f"{pad}{_key(key)}:")
                _mapping(value, indent + 2, lines)
            else:
                lines.append(f"{pad}{_key(key)}: {{}}")
        elif isinstance(value, (list, tuple)):
            lines.append(f"{pad}{_key(key)}: [{', '.join(scalar(v) for v in value)}]")
        else:
            lines.append(f"{pad}{_key(key)}: {scalar(value)}")
