#!/usr/bin/env bash
# The main job: napari with the overfocus widget docked on the simulated sample dataset.
# Without a display it says so and runs the same calibration headless through the CLI.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-env.sh
py="$root/.venv/bin/python"
if [[ -z "${DISPLAY:-}" && -z "${WAYLAND_DISPLAY:-}" ]]; then
  echo "No display found: running the overfocus calibration headless (emcal CLI)."
  exec "$root/.venv/bin/emcal" overfocus sample --calibrate --free scan_rotation flip_y overfocus cy cx \
    --out "$root/.emcal-out" "$@"
fi
exec "$py" "$root/scripts/demo.py" "$@"
