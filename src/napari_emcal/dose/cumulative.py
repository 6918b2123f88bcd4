"""The cumulative dose of a dose table, series by series: the acquisition order, the
cumulative dose and where it came from, and how montage pieces and frame sets relate to
the other rows (see :func:`accumulate`)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .columns import PRIOR_TOLERANCE, PRIOR_TOLERANCE_E_A2


def accumulate(rows: pd.DataFrame, times: pd.Series, problems: list[list[str]], accumulation: str):
    """The acquisition order, cumulative dose, where it came from, whether it is a lower
    bound, and how the row relates to others, group by group (``series``).

    In each group the images whose doses add up (images, tilts) are put in acquisition
    order: by time where all have one, else by ``z_value`` (SerialEM's ZValue: the order
    the images were saved), else those with a time by time. An image's cumulative dose
    is then

    - its recorded prior dose plus its own (SerialEM's PriorRecordDose + ExposureDose:
      "recorded in the file"), cross-checked against the sum of the doses of the images
      before it in the group (``PRIOR_TOLERANCE``); or, without a recorded prior dose,
    - that sum plus its own (``accumulation="exposure"``), or flux x time since the
      group's first image plus its own (``"wall_clock"``, needs times).

    A montage piece is its own area: its cumulative dose is its own (plus any recorded
    prior dose). A frame set (one continuous exposure) holds the tilts cut from it
    (``frame_first``/``frame_end``): its dose is the whole exposure's, the tilts' are
    parts of it and are not added to it; the dose recorded between tilts (the frame set's
    dose less the tilts') is in no tilt's prior dose, so the tilts' cumulative doses
    after the first are lower bounds and say so.
    """
    n = len(rows)
    out = {
        "acquisition_order": np.full(n, np.nan),
        "cumulative_e_A2": np.full(n, np.nan),
        "cumulative_from": [""] * n,
        "cumulative_lower_bound": np.zeros(n, bool),
        "relation": [""] * n,
    }
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(rows["series"]):
        groups.setdefault(key, []).append(i)
    # plain arrays: the loops below read them element by element
    stamps = times.to_numpy("datetime64[ns]")
    columns = {
        "record": rows["record"].to_numpy(object),
        "dose": rows["dose_e_A2"].to_numpy(float),
        "flux": rows["flux_e_A2_s"].to_numpy(float),
        "prior": rows["prior_dose_e_A2"].to_numpy(float),
        "z": rows["z_value"].to_numpy(float),
        "frames": rows["frame_first"].to_numpy(float),
        "recorded": (rows["dose_from"] == "recorded in the file").to_numpy(bool),
        # seconds since 1970 (NaN without a time)
        "seconds": np.where(np.isnat(stamps), np.nan, stamps.astype("int64").astype(float) / 1e9),
    }
    for key, members in groups.items():
        frame_sets, order = _accumulate_group(columns, members, key, out, problems, accumulation)
        _relate_frame_sets(rows, frame_sets, order, out, problems)
    return out


def _accumulate_group(columns, members, series, out, problems, accumulation):
    """One group's order and cumulative doses (see :func:`accumulate`); returns its
    frame sets and its counted images in acquisition order."""
    record, dose, flux = columns["record"], columns["dose"], columns["flux"]
    prior, z, stamp = columns["prior"], columns["z"], columns["seconds"]
    counted = [i for i in members if record[i] in ("", "image", "tilt")]
    pieces = [i for i in members if record[i] == "montage piece"]
    frame_sets = [i for i in members if record[i] == "frame set"]
    for i in members:
        if record[i] == "montage":
            out["relation"][i] = (
                f"the whole montage {series}: its {len(pieces)} pieces carry the doses"
            )
    timed = ~np.isnan(stamp)
    # acquisition order
    if counted and all(timed[i] for i in counted):
        by = "time"
        order = sorted(counted, key=lambda i: (stamp[i], _or_inf(z[i]), i))
        by_z = sorted(counted, key=lambda i: (_or_inf(z[i]), i))
        if all(not math.isnan(z[i]) for i in counted) and by_z != order:
            first = next(i for i, j in zip(order, by_z) if i != j)
            problems[first].append(
                "the times put the images in another order than their ZValues: the order "
                "is taken from the times"
            )
    elif counted and all(not math.isnan(z[i]) for i in counted):
        by = "ZValue"
        order = sorted(counted, key=lambda i: (z[i], i))
        frames = columns["frames"]
        if all(not math.isnan(frames[i]) for i in counted):
            by_frames = sorted(counted, key=lambda i: (frames[i], i))
            if by_frames != order:
                first = next(i for i, j in zip(order, by_frames) if i != j)
                problems[first].append(
                    "FrameTSStartEndFrames put the tilts in another order than their "
                    "ZValues: the ZValue order is used"
                )
    else:
        by = "time"
        order = sorted((i for i in counted if timed[i]), key=lambda i: (stamp[i], i))
    seconds = [stamp[i] for i in order]
    total, incomplete = 0.0, False
    for k, i in enumerate(order):
        out["acquisition_order"][i] = k + 1
        own = dose[i]
        if math.isnan(own):
            incomplete, own = True, 0.0
        if not math.isnan(prior[i]) and (accumulation == "exposure" or math.isnan(seconds[k])):
            out["cumulative_e_A2"][i] = prior[i] + own
            out["cumulative_from"][i] = (
                "recorded in the file (prior dose + dose)"
                if columns["recorded"][i]
                else "recorded prior dose + computed dose"
            )
            limit = max(PRIOR_TOLERANCE * prior[i], PRIOR_TOLERANCE_E_A2)
            if not incomplete and abs(prior[i] - total) > limit:
                problems[i].append(
                    f"recorded prior dose {prior[i]:.4g} e⁻/Å² differs from the "
                    f"{total:.4g} e⁻/Å² of the images before it (in {by} order) by more "
                    f"than {100 * PRIOR_TOLERANCE:g} % or {PRIOR_TOLERANCE_E_A2:g} e⁻/Å²"
                    + ("" if k else ": earlier images missing from the table?")
                )
        else:
            out["cumulative_e_A2"][i] = total + own
            out["cumulative_lower_bound"][i] = incomplete
            out["cumulative_from"][i] = (
                "flux x time since the first image + dose"
                if accumulation == "wall_clock"
                else f"sum of the doses before it ({by} order) + dose"
            )
            if not math.isnan(prior[i]):  # wall clock: the recorded prior as a check
                if total + PRIOR_TOLERANCE_E_A2 < prior[i] * (1 - PRIOR_TOLERANCE):
                    problems[i].append(
                        f"flux x time gives {total:.4g} e⁻/Å² before it, less than the "
                        f"recorded prior dose {prior[i]:.4g} e⁻/Å²"
                    )
        if accumulation == "exposure":
            total += own
        elif k + 1 < len(order):
            step = seconds[k + 1] - seconds[k]
            if math.isnan(flux[i]) or math.isnan(step):
                incomplete = True
            else:
                total += flux[i] * step
    for i in pieces:
        own = 0.0 if math.isnan(dose[i]) else dose[i]
        out["cumulative_e_A2"][i] = (0.0 if math.isnan(prior[i]) else prior[i]) + own
        out["cumulative_lower_bound"][i] = math.isnan(dose[i])
        out["cumulative_from"][i] = "its own dose (a montage piece is its own area)"
        out["relation"][i] = (
            f"piece of montage {series}: overlaps with its neighbours receive their doses too"
        )
    return frame_sets, order


def _relate_frame_sets(rows, frame_sets, tilts, out, problems) -> None:
    dose = rows["dose_e_A2"].to_numpy(float)
    prior = rows["prior_dose_e_A2"].to_numpy(float)
    names = rows["image"].to_numpy(object)
    first, end = rows["frame_first"].to_numpy(float), rows["frame_end"].to_numpy(float)
    cut = [i for i in tilts if not math.isnan(first[i])]
    for n, f in enumerate(frame_sets):
        own = dose[f]
        out["cumulative_e_A2"][f] = (0.0 if math.isnan(prior[f]) else prior[f]) + (
            0.0 if math.isnan(own) else own
        )
        out["cumulative_lower_bound"][f] = math.isnan(own)
        out["cumulative_from"][f] = "recorded in the file (the whole exposure)"
        if n or not cut:
            out["relation"][f] = "a continuous exposure; no tilt of the table is cut from it"
            continue
        parts = dose[cut]
        tilts_dose = float(np.nansum(parts))
        between = own - tilts_dose
        limit = max(PRIOR_TOLERANCE * own, PRIOR_TOLERANCE_E_A2) if not math.isnan(own) else 0
        span = f"frames {first[cut].min():g}-{np.nanmax(end[cut]):g}"
        out["relation"][f] = (
            f"the continuous exposure {len(cut)} tilts ({names[cut[0]]} to "
            f"{names[cut[-1]]}, {span}) were cut from: tilts {tilts_dose:.4g} e⁻/Å²"
            + (
                f", between tilts {between:.4g} e⁻/Å² (in no tilt); in all {own:.4g} e⁻/Å²"
                if not math.isnan(own)
                else "; the frame set's own dose is not recorded"
            )
        )
        if not math.isnan(own) and -between > limit:
            problems[f].append(
                f"the tilts cut from this frame set have {tilts_dose:.4g} e⁻/Å², more than "
                f"its {own:.4g} e⁻/Å²: not the same exposure?"
            )
        for k, i in enumerate(cut):
            text = (
                f"frames {first[i]:g}-{end[i]:g} of {names[f]}: its dose is part of the "
                "frame set's, not added to it"
            )
            if between > limit and k:
                text += (
                    f"; the {between:.4g} e⁻/Å² recorded between tilts is in no prior "
                    "dose (the file does not say when it fell): this cumulative dose is a "
                    "lower bound"
                )
                out["cumulative_lower_bound"][i] = True
            out["relation"][i] = text


def _or_inf(value: float) -> float:
    return math.inf if math.isnan(value) else value
