"""A calibration report: one self-contained HTML page (images inline) for a session.

Each tool's calibration is a :class:`Section`: its values with standard errors and units,
where every input value came from, its images (the sharp ``shifted_sum`` beside ``point``,
the autocorrelation with its lattice peaks, the aligned high-defocus pair, the dose plot),
and how it compares with the previous calibration at the same setting in the history.
:func:`write_report` writes the page; ``emcal report`` builds one for the samples and the
history.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ._files import atomic_write_text
from .display import robust_limits
from .units import from_si

__all__ = [
    "Section",
    "dose_section",
    "high_defocus_section",
    "history_section",
    "overfocus_section",
    "pixel_size_section",
    "render",
    "write_report",
]


@dataclass
class Section:
    """One calibration in the report."""

    title: str
    #: (quantity, value, standard error or "", unit, where it came from)
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    #: (caption, PNG bytes)
    images: list[tuple[str, bytes]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- pictures ----------------------------------------------------------------------------
def png(image, points=None, size: int = 320) -> bytes:
    """A 2D image as a grey PNG (0.5-99.5 percentile contrast), ``points`` (y, x) in its
    pixels marked in red; the longer side scaled to ``size`` px."""
    from PIL import Image, ImageDraw

    values = np.asarray(image, dtype=float)
    low, high = robust_limits(values)
    scaled = np.clip((values - low) / (high - low), 0, 1)
    picture = Image.fromarray((np.nan_to_num(scaled) * 255).astype(np.uint8)).convert("RGB")
    factor = size / max(picture.size)
    picture = picture.resize(
        (max(1, round(picture.width * factor)), max(1, round(picture.height * factor))),
        Image.NEAREST,
    )
    if points is not None and len(points):
        draw = ImageDraw.Draw(picture)
        for y, x in np.asarray(points, float) * factor:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), outline=(255, 60, 60))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def figure_png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _sigma(value) -> str:
    return "" if value is None else f"{value:.3g}"


# -- sections ----------------------------------------------------------------------------
def overfocus_section(result, images: dict, source: str, provenance: dict) -> Section:
    """An automatic overfocus calibration (:class:`CalibrationResult`), its images and
    where each fixed length came from (``provenance``: twin parameter -> source)."""
    p, sigma = result.params, result.uncertainty
    rows = [
        (
            "scan rotation",
            f"{p.scan_rotation:.4f}",
            _sigma(sigma.get("scan_rotation")),
            "°",
            "calibrated",
        ),
        (
            "flip_y",
            str(p.flip_y),
            "",
            "",
            f"calibrated; handedness {result.flip_margin:.0f} σ from the other"
            if result.flip_margin is not None
            else "calibrated",
        ),
        (
            "overfocus",
            f"{from_si(p.overfocus, 'µm'):.5f}",
            _sigma(from_si(sigma.get("overfocus") or 0, "µm")),
            "µm",
            "calibrated",
        ),
        (
            "beam centre y, x",
            f"{p.cy:.2f}, {p.cx:.2f}",
            _sigma(sigma.get("cy")),
            "px",
            "calibrated" if "cy" in sigma else provenance.get("cy", "typed"),
        ),
    ]
    for name, label, value, unit in (
        ("scan_pixel_size", "scan step", from_si(p.scan_pixel_size, "nm"), "nm"),
        ("camera_length", "camera length", from_si(p.camera_length, "mm"), "mm"),
        ("detector_pixel_size", "detector pixel", from_si(p.detector_pixel_size, "µm"), "µm"),
    ):
        rows.append((label, f"{value:.5g}", "", unit, provenance.get(name, "typed")))
    pictures = [
        (caption, png(images[name]))
        for name, caption in (
            ("shifted_sum", "shifted_sum (sharp when calibrated)"),
            ("point", "point"),
        )
        if name in images
    ]
    notes = [f"correlation {result.score:.3f} after {result.n_evaluations} evaluations"]
    return Section(f"Overfocus calibration: {source}", rows, pictures, notes)


def pixel_size_section(result, image_name: str, magnification=None) -> Section:
    """A pixel size from a grating or lattice (:class:`PixelSizeResult`), with its
    autocorrelation and the lattice peaks used."""
    rows = [
        (
            "pixel size",
            f"{result.pixel_size_nm:.5g}",
            _sigma(result.pixel_size_sigma_nm),
            "nm",
            f"measured on {image_name}",
        ),
        ("grid angle", f"{result.angle_deg:.3f}", _sigma(result.angle_sigma_deg), "°", "measured"),
        ("anisotropy", f"{result.anisotropy_percent:.2f}", "", "%", "measured"),
        (
            "specimen spacing",
            " x ".join(f"{v:g}" for v in sorted(set(result.spacing_nm))),
            "",
            "nm",
            f"the {result.mode}'s",
        ),
        (
            "magnification",
            f"{magnification:g}" if magnification else "unknown",
            "",
            "",
            "the image's metadata" if magnification else "not recorded",
        ),
    ]
    peaks = [result.autocorrelation_pixel(lag) for lag in np.reshape(result.peaks, (-1, 2))]
    picture = png(result.autocorrelation, points=peaks)
    return Section(
        f"Pixel size: {image_name}",
        rows,
        [("autocorrelation and lattice", picture)],
        list(result.notes),
    )


def high_defocus_section(result, near, aligned, names: tuple[str, str]) -> Section:
    """A high-defocus magnification and rotation, with the near-focus image beside the
    defocused one mapped onto it."""
    rows = [
        ("scale", f"{result.scale:.5f}", "", "", f"{names[1]} against {names[0]}"),
        ("rotation", f"{result.rotation_deg:+.3f}", "", "°", "measured"),
        (
            "residual",
            f"{result.residual_px:.2f}" if result.refined else "—",
            "",
            "px",
            f"{result.patches} regions" if result.refined else "not refined",
        ),
    ]
    pictures = [("near focus", png(near)), ("defocused, aligned onto it", png(aligned))]
    return Section(f"High-defocus pair: {names[1]}", rows, pictures, list(result.notes))


def dose_section(table) -> Section:
    """The dose table's summary and its cumulative dose against time."""
    from matplotlib.figure import Figure

    frame = table.frame
    rows = [
        (
            str(r.image),
            f"{r.dose_e_A2:.4g}",
            "",
            "e⁻/Å²",
            f"cumulative {r.cumulative_e_A2:.4g}; current from {r.current_from or '—'}",
        )
        for r in frame.itertuples()
    ]
    figure = Figure(figsize=(4.5, 2.6), tight_layout=True)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(range(1, len(frame) + 1), frame["cumulative_e_A2"], "o-")
    if table.budget:
        axes.axhline(table.budget, color="red", linestyle="--", label="budget")
        axes.legend()
    axes.set_xlabel("image")
    axes.set_ylabel("cumulative dose (e⁻/Å²)")
    return Section("Dose table", rows, [("cumulative dose", figure_png(figure))], [table.summary()])


def history_section(entries, compared: list[str]) -> Section:
    """The calibrations kept in the history, and how this session's compare."""
    rows = []
    for entry in entries:
        shown = ", ".join(
            f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.values.items()
        )
        sigma = ", ".join(f"{k} {v:.2g}" for k, v in entry.uncertainty.items() if v)
        rows.append(
            (
                f"{entry.tool} {entry.setting}".strip(),
                shown,
                sigma,
                "",
                f"{entry.time[:16]} · {entry.source}",
            )
        )
    return Section("Calibration history", rows, [], compared or ["no drift"])


# -- the page ----------------------------------------------------------------------------
_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #eee; } figure { display: inline-block; margin: 0.5em 1em 0.5em 0; }
figcaption { font-size: 0.85em; color: #555; } .note { color: #555; }
"""


def render(sections: list[Section], title: str) -> str:
    """The report as one HTML document, images inline (base64 PNG)."""
    escape = html.escape
    created = datetime.now(UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1><p class='note'>written {created} by napari-emcal</p>",
    ]
    for section in sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        if section.rows:
            parts.append(
                "<table><tr><th>quantity</th><th>value</th><th>standard error</th>"
                "<th>unit</th><th>from</th></tr>"
            )
            for row in section.rows:
                parts.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
            parts.append("</table>")
        for caption, data in section.images:
            encoded = base64.b64encode(data).decode("ascii")
            parts.append(
                f"<figure><img alt='{escape(caption)}' src='data:image/png;base64,{encoded}'>"
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
        for note in section.notes:
            parts.append(f"<p class='note'>{escape(note)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path, sections: list[Section], title: str = "Calibration report") -> Path:
    """Write :func:`render` to ``path`` (atomically); returns the path."""
    atomic_write_text(path, render(sections, title))
    return Path(path)
