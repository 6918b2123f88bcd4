"""Calibration accuracy and its uncertainty across shadow magnifications (issue 18).

Run: .venv/bin/python benchmarks/bench_overfocus_shadow.py [--quick] [--detectors 64 128 256]
[--magnifications K …] [--noisy-only] [--noisy-runs N] [--seed S]
[--specimens detailed particles lattice points] [--descan D …]

Each case simulates a 64x64 scan of a specimen, each detector pixel integrating its
footprint (``simulate(..., oversample=3, integrate=True)``), over- or underfocus and either
flip, and calibrates it from a start 50° and 20 % off with the wrong flip. Specimen classes:

- ``detailed``: detail at a third of a scan step and structures of eight;
- ``particles``: large smooth particles 20-30 scan px across with soft edges, a third of
  the area (:func:`~napari_emcal.specimens.particle_specimen`);
- ``lattice``: a perfect square lattice of period 8 scan px (shifts ambiguous by a period:
  the right answer or a refusal naming the period, never a confident wrong answer);
- ``points``: sparse dark points 0.8 scan px in size, one per 100 scan px².

``--descan D`` adds cases whose beam walks on the detector by ``D`` detector px per scan px
(a descan ``[[D, 0.3 D], [-0.2 D, D]]``), calibrated as a fixed beam would be.

Targets: overfocus within 0.2 % and rotation within 0.05° for |k| 0.2-2.5 scan px per
detector px, noise-free and at 5·10⁴ e⁻ per frame; the true error within 3 sigma in at
least 95 % of noisy runs. The summary gives, per specimen class, the refusal rate, the
errors of what was calibrated, the confident wrong answers (flip wrong, or an error beyond
the targets and beyond 3 sigma) and the time per case, with the CPU model.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict

import numpy as np

from napari_emcal.errors import CalibrationFailedError
from napari_emcal.overfocus import TwinParams, calibrate, simulate
from napari_emcal.overfocus.calibrate import overfocus_for_magnification
from napari_emcal.specimens import (
    lattice_specimen,
    multiscale_specimen,
    particle_specimen,
    sparse_point_specimen,
)

SCAN = (64, 64)
OVERSAMPLE = 3
SPECIMENS = ("detailed", "particles", "lattice", "points")


def specimen_of(kind, side, seed):
    """A specimen of class ``kind``, ``side`` scan px square, OVERSAMPLE px per scan px."""
    shape = (OVERSAMPLE * side,) * 2
    if kind == "detailed":
        return multiscale_specimen(shape, feature_sizes=(1.0, 8.0 * OVERSAMPLE), seed=seed)
    if kind == "particles":
        return particle_specimen(
            shape, diameter=(20 * OVERSAMPLE, 30 * OVERSAMPLE), edge=2 * OVERSAMPLE, seed=seed
        )
    if kind == "lattice":
        angle = float(np.random.default_rng(seed).uniform(0, 90))
        return lattice_specimen(
            shape, period=8 * OVERSAMPLE, blob=1.2 * OVERSAMPLE, angle_deg=angle, seed=seed
        )
    if kind == "points":
        return sparse_point_specimen(
            shape, count=side * side // 100, size=0.8 * OVERSAMPLE, seed=seed
        )
    raise ValueError(f"unknown specimen class {kind!r}")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def case(magnification, detector, rotation, flip, dose, seed, kind="detailed", descan=0.0):
    base = TwinParams(
        overfocus=np.sign(magnification) * 1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6 * 64 / detector,
        cy=(detector - 1) / 2 + 0.3,
        cx=(detector - 1) / 2 - 0.2,
        scan_rotation=rotation,
        flip_y=flip,
        semiconv=12e-3 * 64 / detector * 1.6,
    )
    truth = base.replace(overfocus=overfocus_for_magnification(magnification, base))
    if descan:
        truth = truth.replace(descan=[[descan, 0.3 * descan], [-0.2 * descan, descan]])
    side = int(SCAN[0] + 1.5 * abs(magnification) * detector + 16)
    specimen = specimen_of(kind, side, seed)
    data = simulate(
        specimen,
        SCAN,
        (detector,) * 2,
        truth,
        oversample=OVERSAMPLE,
        integrate=True,
        dose=dose,
        seed=seed,
    )
    start = base.replace(
        scan_rotation=rotation + 50.0, flip_y=not flip, overfocus=truth.overfocus * 1.2
    )
    t0 = time.perf_counter()
    result = calibrate(data, start)
    seconds = time.perf_counter() - t0
    p, sigma = result.params, result.uncertainty
    d_rot = (p.scan_rotation - rotation + 180) % 360 - 180
    d_foc = p.overfocus / truth.overfocus - 1
    return dict(
        flip_ok=p.flip_y == flip,
        d_rot=d_rot,
        d_foc=d_foc,
        z_rot=abs(d_rot) / sigma["scan_rotation"],
        z_foc=abs(p.overfocus - truth.overfocus) / sigma["overfocus"],
        sigma_rot=sigma["scan_rotation"],
        sigma_foc=sigma["overfocus"] / abs(truth.overfocus),
        margin=result.flip_margin,
        seconds=seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="64² detectors, noise-free")
    parser.add_argument("--detectors", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--noisy-runs", type=int, default=2, help="noisy runs per case")
    parser.add_argument(
        "--magnifications", type=float, nargs="+", default=[0.2, 0.5, 1.0, 1.5, 2.0, 2.5]
    )
    parser.add_argument("--noisy-only", action="store_true", help="only the noisy runs")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--specimens", nargs="+", default=["detailed"], choices=SPECIMENS)
    parser.add_argument(
        "--descan", type=float, nargs="+", default=[0.0], help="descan sizes (px per scan px)"
    )
    args = parser.parse_args()
    magnifications = args.magnifications
    detectors = [64] if args.quick else args.detectors
    doses = [None] if args.quick else ([5e4] if args.noisy_only else [None, 5e4])
    rng = np.random.default_rng(args.seed)
    print(f"CPU: {cpu_model()}\n")
    print(
        "| specimen | descan | detector | k | dose e/frame | flip | Δθ (°) | σθ (°) | Δf (%) "
        "| σf (%) | handedness (σ) | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = defaultdict(list)  # (specimen, descan) -> results, None for a refusal
    reasons = defaultdict(list)
    for kind in args.specimens:
        for descan in args.descan:
            for detector in detectors:
                for magnitude in magnifications:
                    for dose in doses:
                        for _run in range(1 if dose is None else args.noisy_runs):
                            k = magnitude * rng.choice([-1, 1])
                            rotation, flip = rng.uniform(-180, 180), bool(rng.integers(2))
                            seed = int(rng.integers(1000))
                            head = (
                                f"| {kind} | {descan:g} | {detector}² | {k:+.2f} "
                                f"| {dose or 'none'} |"
                            )
                            t0 = time.perf_counter()
                            try:
                                r = case(k, detector, rotation, flip, dose, seed, kind, descan)
                            except CalibrationFailedError as error:
                                seconds = time.perf_counter() - t0
                                print(f"{head} refused ({seconds:.1f} s): {error} |", flush=True)
                                rows[kind, descan].append(dict(refused=True, seconds=seconds))
                                reasons[kind, descan].append(str(error).split(":")[0])
                                continue
                            r.update(refused=False, noisy=dose is not None)
                            rows[kind, descan].append(r)
                            print(
                                f"{head} {'ok' if r['flip_ok'] else 'WRONG'} | "
                                f"{r['d_rot']:+.4f} | {r['sigma_rot']:.4f} | "
                                f"{100 * r['d_foc']:+.3f} | {100 * r['sigma_foc']:.3f} | "
                                f"{r['margin']:.0f} | {r['seconds']:.1f} |",
                                flush=True,
                            )
    print(f"\nCPU: {cpu_model()}")
    print(
        "\n| specimen | descan | cases | refused | flip right | max \\|Δθ\\| (°) "
        "| max \\|Δf\\| (%) | noisy within 3σ (θ, f) | confident wrong | s per case (median) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (kind, descan), results in rows.items():
        done = [r for r in results if not r["refused"]]
        noisy = [r for r in done if r["noisy"]]
        wrong = sum(
            (not r["flip_ok"])
            or (abs(r["d_rot"]) > 0.05 and r["z_rot"] > 3)
            or (abs(r["d_foc"]) > 2e-3 and r["z_foc"] > 3)
            for r in done
        )
        refused = len(results) - len(done)
        cover = (
            f"{np.mean([r['z_rot'] < 3 for r in noisy]):.0%}, "
            f"{np.mean([r['z_foc'] < 3 for r in noisy]):.0%} of {len(noisy)}"
            if noisy
            else "–"
        )
        print(
            f"| {kind} | {descan:g} | {len(results)} | {refused} ({refused / len(results):.0%}) | "
            f"{sum(r['flip_ok'] for r in done)}/{len(done)} | "
            + (
                f"{max(abs(r['d_rot']) for r in done):.4f} | "
                f"{100 * max(abs(r['d_foc']) for r in done):.3f} | "
                if done
                else "– | – | "
            )
            + f"{cover} | {wrong} | {np.median([r['seconds'] for r in results]):.1f} |"
        )
    for key, why in reasons.items():
        print(f"refusals, {key[0]} (descan {key[1]:g}): " + "; ".join(sorted(set(why))))


if __name__ == "__main__":
    main()
