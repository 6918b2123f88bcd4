#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv (idempotent).
# Usage: source scripts/setup-env.sh [--test]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
extras="qt"
[[ "${1:-}" == "--test" ]] && extras="test"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "napari-emcal needs Python 3.11 or newer (found: $("$python" --version 2>&1))." >&2
  exit 1
fi
if [[ ! -x "$venv/bin/python" ]]; then
  echo "Creating virtual environment in $venv"
  "$python" -m venv "$venv" || {
    echo "Could not create a venv. On Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
fi
stamp="$venv/.emcal-installed-$extras"
if [[ ! -f "$stamp" || "$root/pyproject.toml" -nt "$stamp" ]]; then
  echo "Installing napari-emcal[$extras] into $venv (first run takes a few minutes)"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e "$root[$extras]"
  touch "$stamp"
fi
