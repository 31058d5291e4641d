"""Saved task results as data that executes nothing when read: the resume cache's file format.

A result — nested dicts (text keys), lists and tuples of numpy arrays of numbers or booleans and of
plain numbers, text, booleans or None — is stored as one uncompressed ``.npz`` (a zip of ``.npy``
arrays, read with ``allow_pickle=False``, so no object arrays and no code) holding the arrays
``a0, a1, …`` and ``meta``, JSON in UTF-8 bytes:

- ``format``: :data:`FORMAT`;
- ``key``: what the result belongs to (the run's fingerprint digest and the partition's key); an
  entry read under another key is foreign and ignored;
- ``tree``: the nesting, arrays replaced by their number (``{"a": i}``), tuples and dicts tagged;
- ``sha256``: of the key, the tree and every array's dtype, shape and bytes.

:func:`load` returns None, with a warning, for a file that is missing, unreadable, corrupt,
truncated, foreign or of another format, and the caller recomputes. Arrays come back with their
dtype, shape and bytes, numbers through JSON's exact float text: results equal the pickled ones
bit for bit. numpy's own ``.npz`` reader is used (a maintained library); the tree is ~40 lines.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = "ecovoucher-cache-1"


def save(path: Path, value: Any, key: str) -> None:
    """Write ``value`` to ``path`` (whole: written to a temporary name, then renamed)."""
    from pipeline.runtime.atomic import replacing

    arrays: list[np.ndarray] = []
    tree = _encode(value, arrays)
    meta = {"format": FORMAT, "key": key, "tree": tree, "sha256": _digest(key, tree, arrays)}
    members = {f"a{i}": a for i, a in enumerate(arrays)}
    members["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with replacing(Path(path)) as tmp, tmp.open("wb") as f:
        np.savez(f, **members)


def load(path: Path, key: str) -> Any | None:
    """The value saved at ``path`` under ``key``, or None (with a warning unless the file is
    simply absent) when it cannot be trusted."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT:
                return _ignored(path, f"not of format {FORMAT}")
            if meta.get("key") != key:
                return _ignored(path, "saved for other inputs or settings (a foreign entry)")
            arrays = [z[f"a{i}"] for i in range(len(z.files) - 1)]
        if _digest(key, meta["tree"], arrays) != meta.get("sha256"):
            return _ignored(path, "its checksum does not match its content")
        return _decode(meta["tree"], arrays)
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError, RecursionError) as exc:  # fmt: skip
        return _ignored(path, f"unreadable ({type(exc).__name__}: {str(exc)[:200]})")


def _ignored(path: Path, why: str) -> None:
    log.warning("resume cache: %s is %s; it is ignored and recomputed", path, why)
    return None


def _encode(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        a = np.asarray(value)
        if a.dtype.kind not in "biufc":
            raise TypeError(f"cannot cache an array of dtype {a.dtype} (numbers only)")
        arrays.append(a)
        return {"a": len(arrays) - 1, "scalar": isinstance(value, np.generic)}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("cannot cache a dict whose keys are not text")
        return {"d": [[k, _encode(v, arrays)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"t": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _decode(tree: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(tree, list):
        return [_decode(v, arrays) for v in tree]
    if isinstance(tree, dict):
        if "a" in tree:
            a = arrays[tree["a"]]
            return a[()] if tree["scalar"] else a
        if "d" in tree:
            return {str(k): _decode(v, arrays) for k, v in tree["d"]}
        return tuple(_decode(v, arrays) for v in tree["t"])
    return tree


def _digest(key: str, tree: Any, arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([key, tree]).encode("utf-8"))
    for a in arrays:
        h.update(f"|{a.dtype.str}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
