#!/usr/bin/env bash
# The documentation (MkDocs, API reference from the docstrings, CLI reference from --help),
# built with warnings as errors into site/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-env.sh --test
NO_MKDOCS_2_WARNING=1 "$root/.venv/bin/mkdocs" build --strict --quiet "$@"
