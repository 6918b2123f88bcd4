#!/usr/bin/env bash
# The whole test suite, GUI tests included (under Xvfb when there is no display).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/system-deps.sh
bash scripts/setup-env.sh --test
py="$root/.venv/bin/python"
if [[ -z "${DISPLAY:-}" ]] && command -v xvfb-run >/dev/null; then
  exec xvfb-run -a -s "-screen 0 1600x1200x24" "$py" -m pytest "$@"
fi
exec "$py" -m pytest "$@"
