#!/usr/bin/env bash
# Set up .venv if needed, build the Beijing–Tianjin–Hebei demo data and run the pipeline on it.
# Usage: scripts/demo.sh [extra ecovoucher demo options, e.g. --workers 2]
source "$(dirname "$0")/_venv.sh"
ecovoucher demo --out out/demo "$@"
