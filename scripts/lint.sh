#!/usr/bin/env bash
# Lint and format checks (ruff, configured in pyproject.toml), as CI runs them.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-env.sh --test
"$root/.venv/bin/ruff" check .
"$root/.venv/bin/ruff" format --check .
