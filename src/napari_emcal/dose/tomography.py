"""A tilt series as a unit: angle, order and dose per tilt, its scheme, and the files
tomography programs read its dose from.

Pure computation and text files. :func:`tilt_series` takes one series out of a
:class:`~napari_emcal.dose.table.DoseTable`; the writers put its per-tilt dose in the forms
documented by the programs that dose-weight tilt series (see ``docs/science.md``):

- :func:`write_cumulative_text`: plain text, one tilt a line, in tilt-angle order or in
  acquisition order: angle, dose before the tilt, its dose, cumulative dose, order.
- :func:`write_relion_tilt_series_star`: RELION 5 tomography's per-tilt-series STAR file
  (``data_<name>`` with ``_rlnTomoNominalStageTiltAngle`` and ``_rlnMicrographPreExposure``,
  the dose in e⁻/Å² before each tilt).
- :func:`write_aretomo_angles`: AreTomo's ``-AngFile``: a tilt angle and its acquisition
  order (from 1) per image of the stack, the order its dose weighting uses together with
  one dose per image (``-ImgDose``, returned).
- :func:`write_mdoc_doses`: the ``.mdoc`` with ``ExposureDose`` and ``PriorRecordDose``
  in each tilt's section, as SerialEM writes them (six significant digits).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import atomic_write_text
from ..errors import InvalidDataError

__all__ = [
    "SCHEMES",
    "recognise_scheme",
    "tilt_series",
    "tilt_series_names",
    "write_aretomo_angles",
    "write_cumulative_text",
    "write_mdoc_doses",
    "write_relion_tilt_series_star",
]

SCHEMES = ("dose-symmetric", "bidirectional", "unidirectional", "unrecognised")
#: Doses per tilt that differ by more than this fraction cannot be given to AreTomo as its
#: one dose per image.
ARETOMO_DOSE_SPREAD = 0.05
COLUMNS = (
    "image",
    "z_value",
    "tilt_angle_deg",
    "acquisition_order",
    "pre_exposure_e_A2",
    "dose_e_A2",
    "cumulative_e_A2",
    "cumulative_from",
    "cumulative_lower_bound",
)


def tilt_series_names(table) -> list[str]:
    """The series of the table that hold tilts (rows with a tilt angle)."""
    rows = table.rows
    tilts = rows[(rows["record"] == "tilt") & rows["tilt_angle_deg"].notna()]
    return list(dict.fromkeys(tilts["series"]))


def tilt_series(table, series: str | None = None) -> pd.DataFrame:
    """The tilts of one series in acquisition order (``COLUMNS``): tilt angle (°), order
    (from 1), dose before the tilt (``pre_exposure_e_A2``), its own dose and cumulative
    dose (e⁻/Å²), where the cumulative dose came from.

    Raises
    ------
    InvalidDataError
        No tilt series in the table, several and ``series`` not given, or a tilt whose
        dose or order is unknown (named: an export would be wrong from it on).
    """
    names = tilt_series_names(table)
    if not names:
        raise InvalidDataError(
            "the dose table holds no tilt series (rows with a tilt angle from an .mdoc)"
        )
    if series is None:
        if len(names) > 1:
            raise InvalidDataError(f"the dose table holds several tilt series: {', '.join(names)}")
        series = names[0]
    if series not in names:
        raise InvalidDataError(f"no tilt series {series!r}; the table holds {', '.join(names)}")
    frame = table.frame
    tilts = frame[(frame["series"] == series) & (frame["record"] == "tilt")].copy()
    unknown = tilts[
        tilts["dose_e_A2"].isna()
        | tilts["cumulative_e_A2"].isna()
        | tilts["acquisition_order"].isna()
        | tilts["tilt_angle_deg"].isna()
    ]
    if len(unknown):
        names_text = ", ".join(unknown["image"].head(3))
        raise InvalidDataError(
            f"{len(unknown)} tilt(s) of {series} have no dose, order or angle ({names_text}"
            f"{'…' if len(unknown) > 3 else ''}): their dose is needed for every later tilt's"
        )
    tilts["pre_exposure_e_A2"] = tilts["cumulative_e_A2"] - tilts["dose_e_A2"]
    tilts = tilts.sort_values("acquisition_order")
    return tilts[list(COLUMNS)].reset_index(drop=True)


def recognise_scheme(angles_in_order, tolerance_deg: float = 0.5) -> str:
    """The tilt scheme from the angles in acquisition order (one of ``SCHEMES``).

    - unidirectional: the angle always moves the same way;
    - bidirectional: it moves one way from the start, then returns to the start and moves
      the other way once;
    - dose-symmetric (Hagen et al. 2017): it switches sides of the starting angle more than
      once, moving away from it on each side.
    """
    angles = np.asarray(angles_in_order, float)
    if len(angles) < 3:
        return "unrecognised"
    steps = np.diff(angles)
    moving = steps[np.abs(steps) > tolerance_deg]
    if len(moving) and (np.all(moving > 0) or np.all(moving < 0)):
        return "unidirectional"
    start = angles[0]
    side = np.sign(np.where(np.abs(angles - start) <= tolerance_deg, 0, angles - start))
    sides = side[side != 0]
    switches = int(np.count_nonzero(np.diff(sides)))
    outward = True
    for s in (-1, 1):
        away = np.abs(angles[side == s] - start)
        outward &= bool(np.all(np.diff(away) > -tolerance_deg))
    if not outward:
        return "unrecognised"
    if switches == 1:
        return "bidirectional"
    if switches > 1:
        return "dose-symmetric"
    return "unrecognised"


# -- plain text --------------------------------------------------------------------------
def write_cumulative_text(tilts: pd.DataFrame, path, order: str = "angle") -> Path:
    """One tilt a line, ``order`` = ``"angle"`` (ascending tilt angle) or ``"acquisition"``:
    tilt angle (°), dose before the tilt, its dose, cumulative dose (e⁻/Å²), acquisition
    order (from 1). Lines starting with ``#`` are comments."""
    if order not in ("angle", "acquisition"):
        raise InvalidDataError(f"order must be 'angle' or 'acquisition'; got {order!r}")
    rows = tilts.sort_values("tilt_angle_deg" if order == "angle" else "acquisition_order")
    lines = [
        f"# napari-emcal cumulative dose per tilt, {order} order; doses in e-/A^2",
        "# tilt_angle_deg pre_exposure dose cumulative acquisition_order",
    ]
    if rows["cumulative_lower_bound"].any():
        lines.append("# some cumulative doses are lower bounds (dose between tilts not assigned)")
    lines += [
        f"{r.tilt_angle_deg:.3f} {r.pre_exposure_e_A2:.4f} {r.dose_e_A2:.4f} "
        f"{r.cumulative_e_A2:.4f} {int(r.acquisition_order)}"
        for r in rows.itertuples()
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path)


# -- RELION 5 ------------------------------------------------------------------------------
def _star_token(text: str) -> str:
    # STAR values are whitespace separated: quote one that holds white space
    return f'"{text}"' if re.search(r"\s", text) or not text else text


def write_relion_tilt_series_star(tilts: pd.DataFrame, path, name: str, movie_names=None) -> Path:
    """RELION 5 tomography's per-tilt-series STAR file: a ``data_<name>`` block whose loop
    has one row per tilt in acquisition order with ``_rlnMicrographMovieName``,
    ``_rlnTomoNominalStageTiltAngle`` (°) and ``_rlnMicrographPreExposure`` (e⁻/Å², the
    dose before the tilt).

    ``movie_names`` (one per tilt, acquisition order) name each tilt's image; by default
    ``<z+1>@<name>.mrc``, the tilt's section in the stack SerialEM saved (RELION's
    ``n@stack`` notation), to be replaced by the frame files where those are used.
    """
    rows = tilts.sort_values("acquisition_order")
    stack = name if name.lower().endswith((".mrc", ".st", ".mrcs")) else f"{name}.mrc"
    if movie_names is None:
        movie_names = [f"{int(z) + 1}@{stack}" for z in rows["z_value"].fillna(-1)]
    block = re.sub(r"\s+", "_", name.removesuffix(".mrc"))
    lines = [
        "",
        "# version 50001",
        "",
        f"data_{block}",
        "",
        "loop_ ",
        "_rlnMicrographMovieName #1 ",
        "_rlnTomoNominalStageTiltAngle #2 ",
        "_rlnMicrographPreExposure #3 ",
    ]
    lines += [
        f"{_star_token(str(movie))} {r.tilt_angle_deg:12.6f} {r.pre_exposure_e_A2:12.6f}"
        for movie, r in zip(movie_names, rows.itertuples())
    ]
    atomic_write_text(path, "\n".join(lines) + "\n\n")
    return Path(path)


# -- AreTomo -------------------------------------------------------------------------------
def write_aretomo_angles(tilts: pd.DataFrame, path) -> tuple[Path, float]:
    """AreTomo's ``-AngFile``: per image of the stack (ZValue order) its tilt angle and
    acquisition order from 1; returns the path and the dose per image for ``-ImgDose``
    (e⁻/Å², the mean: AreTomo takes one).

    Raises
    ------
    InvalidDataError
        The doses per tilt differ by more than ``ARETOMO_DOSE_SPREAD``: AreTomo's one dose
        per image would be wrong for some tilts (use the RELION file or the plain text).
    """
    rows = tilts.sort_values(["z_value", "acquisition_order"])
    doses = rows["dose_e_A2"].to_numpy(float)
    mean = float(doses.mean())
    if mean <= 0 or (doses.max() - doses.min()) > ARETOMO_DOSE_SPREAD * mean:
        raise InvalidDataError(
            f"the doses per tilt range from {doses.min():.4g} to {doses.max():.4g} e⁻/Å²: "
            "AreTomo takes one dose per image (-ImgDose); use another export"
        )
    lines = [f"{r.tilt_angle_deg:.2f} {int(r.acquisition_order)}" for r in rows.itertuples()]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return Path(path), mean


# -- SerialEM ------------------------------------------------------------------------------
_SECTION = re.compile(r"^\s*\[\s*(\w+)\s*=\s*([^\]]*?)\s*\]")
_KEY = re.compile(r"^\s*(ExposureDose|PriorRecordDose)\s*=")


def write_mdoc_doses(mdoc, tilts: pd.DataFrame, path) -> tuple[Path, int]:
    """Copy ``mdoc`` to ``path`` with each tilt's ``ExposureDose`` and ``PriorRecordDose``
    (e⁻/Å², ``%g``: six significant digits, as SerialEM writes them) in its ``[ZValue]``
    section: replaced where the section has the key, added after the header where not.
    Every other line is copied as it is; returns the path and the sections set.

    Raises
    ------
    InvalidDataError
        ``path`` is ``mdoc`` itself, or no section matches a tilt.
    """
    mdoc, path = Path(mdoc), Path(path)
    if path.exists() and path.resolve() == mdoc.resolve():
        raise InvalidDataError(f"{path} is the .mdoc read: write the doses to another file")
    try:
        text = mdoc.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidDataError(f"cannot read {mdoc}: {exc.strerror or exc}") from exc
    by_z = {
        int(r.z_value): (r.dose_e_A2, r.pre_exposure_e_A2)
        for r in tilts.itertuples()
        if not math.isnan(r.z_value)
    }
    out: list[str] = []
    current, seen, done = None, set(), 0
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            current, seen = None, set()
            if match.group(1) == "ZValue":
                try:
                    current = by_z.get(int(float(match.group(2))))
                except ValueError:
                    current = None
            out.append(line)
            if current is not None:
                done += 1
                header = len(out)
            continue
        key = _KEY.match(line)
        if current is not None and key:
            name = key.group(1)
            value = current[0] if name == "ExposureDose" else current[1]
            out.append(f"{name} = {value:g}")
            seen.add(name)
            continue
        if current is not None and not line.strip():
            # the section ends: add the keys it did not have, after its header
            missing = [k for k in ("ExposureDose", "PriorRecordDose") if k not in seen]
            added = [
                f"{k} = {current[0] if k == 'ExposureDose' else current[1]:g}" for k in missing
            ]
            out[header:header] = added
            current = None
        out.append(line)
    if current is not None:
        missing = [k for k in ("ExposureDose", "PriorRecordDose") if k not in seen]
        out[header:header] = [
            f"{k} = {current[0] if k == 'ExposureDose' else current[1]:g}" for k in missing
        ]
    if done == 0:
        raise InvalidDataError(f"no [ZValue] section of {mdoc.name} matches a tilt of the series")
    atomic_write_text(path, "\n".join(out) + "\n")
    return path, done


def plot_cumulative(tilts: pd.DataFrame, axes_angle, axes_order) -> None:
    """Cumulative dose against tilt angle and against acquisition order, on two matplotlib
    axes (lower bounds drawn hollow)."""
    for axes, x, label in (
        (axes_angle, "tilt_angle_deg", "tilt angle (°)"),
        (axes_order, "acquisition_order", "acquisition order"),
    ):
        axes.clear()
        exact = tilts[~tilts["cumulative_lower_bound"]]
        bound = tilts[tilts["cumulative_lower_bound"]]
        if x == "acquisition_order":
            axes.plot(tilts[x], tilts["cumulative_e_A2"], "-", color="0.6", lw=1)
        axes.plot(exact[x], exact["cumulative_e_A2"], "o", color="tab:blue", ms=4)
        if len(bound):
            axes.plot(
                bound[x],
                bound["cumulative_e_A2"],
                "o",
                mfc="none",
                color="tab:orange",
                ms=4,
                label="at least",
            )
            axes.legend(fontsize="small", loc="best")
        axes.set_xlabel(label)
        axes.set_ylabel("cumulative dose (e⁻/Å²)")
