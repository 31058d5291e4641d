#!/usr/bin/env bash
# Build the QGIS plugin zip: dist/ecovoucher_qgis.zip, installable through
# QGIS ▸ Plugins ▸ Manage and Install Plugins ▸ Install from ZIP.
# The zip holds qgis_plugin/ecovoucher_qgis/ and build_info.json (this checkout's path, commit and
# version), by which the plugin finds this checkout's .venv/bin/ecovoucher without being told.
# Usage: scripts/build_qgis_plugin.sh [OUT.zip]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/dist/ecovoucher_qgis.zip}"
PY="$(command -v python3 || command -v python)"
mkdir -p "$(dirname "$OUT")"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$PY" - "$ROOT" "$OUT" "$COMMIT" <<'PYEOF'
import json, re, sys, zipfile
from pathlib import Path

root, out, commit = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
src = root / "qgis_plugin" / "ecovoucher_qgis"
version = re.search(r'^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text("utf-8"), re.M)[1]
metadata = (src / "metadata.txt").read_text("utf-8")
shipped = re.search(r"^version=(.*)$", metadata, re.M)[1].strip()
if shipped != version:
    sys.exit(f"qgis_plugin/ecovoucher_qgis/metadata.txt says version={shipped}, pyproject.toml {version}")
info = {"source": str(root), "commit": commit, "version": version}
tmp = out.with_name(f".partial-{out.name}")
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
    for path in sorted(src.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            zf.write(path, Path("ecovoucher_qgis") / path.relative_to(src))
    zf.writestr("ecovoucher_qgis/build_info.json", json.dumps(info, indent=2) + "\n")
tmp.replace(out)
print(out)
PYEOF
