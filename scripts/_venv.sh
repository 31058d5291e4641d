# Sourced by demo.sh and test.sh: make .venv with python3 if needed and install the project into it.
# The install is skipped when pyproject.toml has not changed since the last one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.ecovoucher-installed"
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
  echo "[setup] installing ecovoucher and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  echo "[setup] compiling the numba kernels (once; cached beside the modules)"
  .venv/bin/python -m pipeline.runtime.kernels
  cp pyproject.toml "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
