#!/usr/bin/env bash
# Set up .venv if needed, then lint, check formatting and run the test suite.
# Usage: scripts/test.sh [pytest args...]
source "$(dirname "$0")/_venv.sh"
echo "[test] ruff check"
ruff check .
echo "[test] ruff format --check"
ruff format --check .
echo "[test] pytest"
python -m pytest -q "$@"
