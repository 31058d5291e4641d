"""Guards that keep the package layout in order (issue 14), read from the source with :mod:`ast`:

- no import cycles inside ``pipeline/`` (importing ``a.b.c`` runs ``a/__init__`` and
  ``a/b/__init__`` first, so those count as imported too);
- no module imports another module's ``_private`` name (``from m import _x`` or ``m._x``);
- ``pipeline/geom`` imports neither pandas (nor geopandas) nor ``pipeline.settings``;
- no arrow from a lower package up to a stage: the packages are ranked (geom < runtime <
  settings < ingest < zonal < accounting < output, vep < run < demo < cli) and a module may
  import only from its own package or from lower ranks;
- every package ``__init__`` names its public API in ``__all__``.

Each check is a plain function of a source folder, and each is shown to fail on a small synthetic
package written to ``tmp_path`` (a test that cannot fail is a defect).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline

ROOT = Path(pipeline.__file__).parent

#: rank of each top-level unit of pipeline/: a module may import its own unit or lower ranks
RANKS = {
    "__init__": 0,
    "errors": 0,
    "codes": 0,
    "numbers": 0,
    "geom": 1,
    "runtime": 2,
    "settings": 3,
    "ingest": 4,
    "zonal": 5,
    "accounting": 6,
    "output": 7,
    "vep": 7,
    "run": 8,
    "demo": 9,
    "cli": 10,
    "__main__": 11,
}


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every .py under ``root`` (a package folder)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_package(name: str, mods: dict[str, Path]) -> bool:
    return mods[name].name == "__init__.py"


def _absolute(node: ast.ImportFrom, name: str, mods: dict[str, Path]) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".")
    if not _is_package(name, mods):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(root: Path) -> dict[str, list[tuple[str, str | None, int]]]:
    """For each module: (imported module, imported name or None, line) of every import statement
    anywhere in it (also inside functions), and ``(module, "_attr", line)`` for every ``m._attr``
    where ``m`` names an imported module of the package."""
    mods = modules(root)
    out: dict[str, list[tuple[str, str | None, int]]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found: list[tuple[str, str | None, int]] = []
        aliases: dict[str, str] = {}  # local name → module of the package
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    found.append((a.name, None, node.lineno))
                    if a.asname and a.name in mods:
                        aliases[a.asname] = a.name
            elif isinstance(node, ast.ImportFrom):
                src = _absolute(node, name, mods)
                for a in node.names:
                    sub = f"{src}.{a.name}"
                    if sub in mods:  # `from pkg import module`: the module itself is imported
                        found.append((sub, None, node.lineno))
                        aliases[a.asname or a.name] = sub
                    else:
                        found.append((src, a.name, node.lineno))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and _private(node.attr)
            ):
                found.append((aliases[node.value.id], node.attr, node.lineno))
        out[name] = found
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]  # not the root package itself


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package's modules it imports (with the packages those pass through)."""
    mods = modules(root)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, found in imports(root).items():
        own = set(_ancestors(name))  # initialised before this module runs
        for target, _, _ in found:
            if target in mods and target != name:  # explicit: `from pkg.sub import x` counts
                graph[name].add(target)
            for t in _ancestors(target):  # implicit: the packages on the way to the target
                if t in mods and t != name and t not in own:
                    graph[name].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def private_imports(root: Path) -> list[str]:
    """``module:line imports other._name`` for every private name taken from another module."""
    mods = modules(root)
    bad = []
    for name, found in imports(root).items():
        for target, attr, line in found:
            if attr and _private(attr) and target in mods and target != name:
                bad.append(f"{name}:{line} imports {target}.{attr}")
    return bad


def forbidden_imports(root: Path, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``module:line imports X`` for each module of ``package`` importing one of ``forbidden``
    (a module or any module below it)."""
    bad = []
    for name, found in imports(root).items():
        if name != package and not name.startswith(package + "."):
            continue
        for target, _, line in found:
            if any(target == f or target.startswith(f + ".") for f in forbidden):
                bad.append(f"{name}:{line} imports {target}")
    return bad


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_imports(root: Path, ranks: dict[str, int]) -> list[str]:
    """Each import from a lower unit to a higher (or another same-rank) unit."""
    bad = []
    graph = import_graph(root)
    for name in sorted(graph):
        a = _unit(name)
        for target in sorted(graph[name]):
            b = _unit(target)
            if a == b or b == "__init__":
                continue
            if ranks[a] < ranks[b] or (ranks[a] == ranks[b] and ranks[a] > 0):
                bad.append(f"{name} ({a}, rank {ranks[a]}) imports {target} ({b}, rank {ranks[b]})")
    return bad


def packages_without_all(root: Path) -> list[str]:
    """Subpackages whose ``__init__`` does not assign ``__all__``."""
    bad = []
    for init in sorted(root.rglob("__init__.py")):
        if init.parent == root:
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        names = {
            t.id
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)
        }
        if "__all__" not in names:
            bad.append(str(init.relative_to(root.parent)))
    return bad


# --- the guards on pipeline/ ----------------------------------------------------------------------


def test_no_import_cycles_inside_pipeline():
    assert cycles(import_graph(ROOT)) == []


def test_no_module_imports_another_modules_private_name():
    assert private_imports(ROOT) == []


def test_geom_imports_neither_pandas_nor_settings():
    forbidden = ("pandas", "geopandas", "pipeline.settings")
    assert forbidden_imports(ROOT, "pipeline.geom", forbidden) == []


def test_no_arrow_from_a_lower_package_up_to_a_stage():
    units = {_unit(m) for m in modules(ROOT)}
    assert units <= set(RANKS), f"rank the new package(s) {units - set(RANKS)} in RANKS"
    assert upward_imports(ROOT, RANKS) == []


def test_every_package_names_its_public_api():
    assert packages_without_all(ROOT) == []


# --- the guards fail when the rule is broken (a synthetic package) --------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_a_cycle_is_found(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import f\n",
            "pkg/b.py": "def f():\n    import pkg.c\n",  # inside a function: still a cycle
            "pkg/c.py": "from pkg import a\n",
            "pkg/d.py": "import pkg.a\n",  # imports into the cycle, not part of it
        },
    )
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    # pkg/sub/__init__ re-exports x; x imports its own package's __init__: a cycle
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from pkg.sub.x import f\n__all__ = ['f']\n",
            "pkg/sub/x.py": "from pkg.sub import g\n",
            "pkg/other.py": "from pkg.sub.x import f\n",  # runs pkg/sub/__init__ first: fine
        },
    )
    assert cycles(import_graph(pkg)) == [["pkg.sub", "pkg.sub.x"]]


def test_a_private_import_is_found(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "_x = 1\n__version__ = '1'\ndef _own():\n    return _x\n",
            "pkg/b.py": "from pkg.a import _x, __version__\n",
            "pkg/c.py": "from pkg import a\nprint(a._x)\n",
            "pkg/d.py": "import pkg.a as m\nprint(m._own())\n",
            "pkg/e.py": "from .a import _x\n",
        },
    )
    assert private_imports(pkg) == [
        "pkg.b:1 imports pkg.a._x",
        "pkg.c:2 imports pkg.a._x",
        "pkg.d:2 imports pkg.a._own",
        "pkg.e:1 imports pkg.a._x",
    ]


def test_pandas_or_settings_in_geom_is_found(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/settings/__init__.py": "__all__ = []\n",
            "pkg/geom/__init__.py": "__all__ = []\n",
            "pkg/geom/ok.py": "import numpy as np\nimport shapely\n",
            "pkg/geom/bad.py": "import pandas as pd\nfrom pkg.settings import x\n",
        },
    )
    got = forbidden_imports(pkg, "pkg.geom", ("pandas", "pkg.settings"))
    assert got == ["pkg.geom.bad:1 imports pandas", "pkg.geom.bad:2 imports pkg.settings"]


def test_an_upward_import_is_found(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/geom/__init__.py": "__all__ = []\n",
            "pkg/geom/k.py": "from pkg.zonal.v import f\n",  # a kernel importing a stage
            "pkg/zonal/__init__.py": "__all__ = []\n",
            "pkg/zonal/v.py": "from pkg.geom.k import g\n",  # down: fine
            "pkg/output/__init__.py": "__all__ = []\n",
            "pkg/vep/__init__.py": "from pkg.output import y\n__all__ = []\n",  # sideways
        },
    )
    ranks = {"__init__": 0, "geom": 1, "zonal": 5, "output": 7, "vep": 7}
    assert upward_imports(pkg, ranks) == [
        "pkg.geom.k (geom, rank 1) imports pkg.zonal (zonal, rank 5)",
        "pkg.geom.k (geom, rank 1) imports pkg.zonal.v (zonal, rank 5)",
        "pkg.vep (vep, rank 7) imports pkg.output (output, rank 7)",
    ]


def test_a_package_without_all_is_found(tmp_path):
    pkg = _write(
        tmp_path,
        {"pkg/__init__.py": "", "pkg/a/__init__.py": "from pkg.a.b import f\n", "pkg/a/b.py": ""},
    )
    assert packages_without_all(pkg) == ["pkg/a/__init__.py"]
