"""Camera-length calibration on simulated ring patterns: accuracy, coverage and time.

Sweeps detector sizes (256² to 1024²), beam energies (80–300 kV), elliptical distortions
(axis ratio 1.00–1.03 at any angle), off-centre beams, a saturated central beam and a
beam stop, and prints each case's errors in units of the reported standard error, with the
CPU model.

    python benchmarks/bench_diffraction.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np

from napari_emcal.diffraction import calibrate_camera_length, ring_pattern
from napari_emcal.diffraction.standards import electron_wavelength, get_standard
from napari_emcal.errors import CalibrationFailedError


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def case(size, kv, ratio, angle, seed, *, standard="Au", saturate=False, beam_stop=0.0):
    """Simulate one pattern whose first ring lies at ~0.2 of the detector's width."""
    rng = np.random.default_rng(seed)
    wavelength = electron_wavelength(kv * 1e3)
    d111 = get_standard(standard).reflections()[0].d_spacing
    r_first = size * rng.uniform(0.17, 0.22)
    l_px = r_first / math.tan(2 * math.asin(wavelength / (2 * d111)))
    pixel = 15e-6
    centre = (
        size / 2 + rng.uniform(-0.08, 0.08) * size,
        size / 2 + rng.uniform(-0.08, 0.08) * size,
    )
    image, truth = ring_pattern(
        (size, size),
        standard=standard,
        camera_length=l_px * pixel,
        detector_pixel_size=pixel,
        beam_energy=kv * 1e3,
        centre=centre,
        axis_ratio=ratio,
        angle_deg=angle,
        ring_width_px=1.2 + size / 512,
        dose=40.0,
        texture=0.25,
        saturation=400.0 if saturate else None,
        central_beam=200.0 if saturate else 50.0,
        beam_stop=beam_stop,
        seed=seed,
    )
    return image, truth


def errors(result, truth) -> dict:
    """Each error, and the error in units of its standard error."""
    rel = result.camera_length / truth.camera_length - 1
    out = {
        "L_rel": rel,
        "L_z": (result.camera_length - truth.camera_length) / result.camera_length_sigma,
        "ratio": result.axis_ratio - truth.axis_ratio,
        "ratio_z": (result.axis_ratio - truth.axis_ratio) / max(result.axis_ratio_sigma, 1e-12),
        "cy": result.centre[0] - truth.centre[0],
        "cx": result.centre[1] - truth.centre[1],
        "cy_z": (result.centre[0] - truth.centre[0]) / result.centre_sigma[0],
        "cx_z": (result.centre[1] - truth.centre[1]) / result.centre_sigma[1],
    }
    d_angle = (result.angle_deg - truth.angle_deg + 90) % 180 - 90
    out["angle"] = d_angle if truth.axis_ratio >= 1.01 else float("nan")
    out["angle_z"] = d_angle / result.angle_sigma_deg if truth.axis_ratio >= 1.01 else float("nan")
    return out


SWEEP = [
    # size, kV, ratio, angle, saturate, beam stop
    (256, 200, 1.00, 0.0, False, 0.0),
    (256, 80, 1.02, 60.0, False, 0.0),
    (512, 300, 1.01, 135.0, False, 0.0),
    (512, 120, 1.03, 10.0, True, 0.0),
    (512, 200, 1.015, 95.0, True, 12.0),
    (1024, 300, 1.03, 170.0, False, 0.0),
    (1024, 80, 1.01, 45.0, True, 20.0),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first four cases only")
    parser.add_argument("--repeats", type=int, default=1, help="noise seeds per case")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_model()}")
    print(
        f"{'size':>5} {'kV':>4} {'ratio':>6} {'angle':>6} {'sat':>4} {'stop':>4} | "
        f"{'dL %':>8} {'zL':>5} | {'dratio':>8} {'z':>5} | {'dangle':>6} {'z':>5} | "
        f"{'dcy':>6} {'dcx':>6} {'zmax':>5} | {'s':>5}"
    )
    worst = 0.0
    failures = 0
    sweep = SWEEP[:4] if args.quick else SWEEP
    for size, kv, ratio, angle, saturate, stop in sweep:
        for seed in range(args.repeats):
            image, truth = case(size, kv, ratio, angle, seed, saturate=saturate, beam_stop=stop)
            start = time.perf_counter()
            try:
                result = calibrate_camera_length(
                    image,
                    standard="Au",
                    beam_energy=truth.beam_energy,
                    detector_pixel_size=truth.detector_pixel_size,
                )
            except CalibrationFailedError as exc:
                failures += 1
                print(f"{size:>5} {kv:>4} {ratio:>6.3f} {angle:>6.1f} refused: {exc}")
                continue
            elapsed = time.perf_counter() - start
            e = errors(result, truth)
            zs = [
                abs(e[k])
                for k in ("L_z", "ratio_z", "cy_z", "cx_z", "angle_z")
                if np.isfinite(e[k])
            ]
            worst = max(worst, *zs)
            print(
                f"{size:>5} {kv:>4} {ratio:>6.3f} {angle:>6.1f} {saturate!s:>4} {stop:>4.0f} | "
                f"{100 * e['L_rel']:>+8.4f} {e['L_z']:>+5.1f} | {e['ratio']:>+8.5f} "
                f"{e['ratio_z']:>+5.1f} | {e['angle']:>+6.2f} {e['angle_z']:>+5.1f} | "
                f"{e['cy']:>+6.3f} {e['cx']:>+6.3f} {max(abs(e['cy_z']), abs(e['cx_z'])):>5.1f} | "
                f"{elapsed:>5.2f}"
            )
    print(f"largest |error| / sigma: {worst:.2f}; refused: {failures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
