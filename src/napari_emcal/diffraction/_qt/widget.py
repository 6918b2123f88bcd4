"""The "Camera length (rings)" dock widget: calibrate on a ring pattern, overlay the fitted
rings and ellipse, plot the corrected azimuthal profile with the standard's rings, keep a
table per nominal setting, export.

Glue only: widget values -> :func:`calibrate_camera_length` in a worker (progress, Cancel)
-> layers, a plot and a :class:`CameraLengthTable`.
"""

from __future__ import annotations

import json
import math

import numpy as np
from magicgui import widgets

from ..._qt.common import displayed_plane, is_greyscale_image, message_label, save_path
from ..._qt.dock import ToolDock
from ..._qt.history import DriftView, keep_in_history
from ..._qt.layers import follow_renames
from ..._qt.plots import ThemedPlot
from ..._qt.provenance import FieldSources, instrument_sources
from ..._qt.tables import SessionTable
from ...history import beam_setting
from ...units import from_si, to_si
from ..calibrate import DiffractionCalibration, calibrate_camera_length
from ..export import py4dstem_calibration, twin_values, write_pattern_hspy
from ..patterns import reduce_frames
from ..spots import calibrate_spots
from ..standards import STANDARDS, electron_wavelength, get_standard
from ..table import CameraLengthTable

__all__ = ["CameraLengthWidget", "ellipse_paths"]

RINGS = " · rings"
CENTRE = " · beam centre"
OUTLIER_COLOUR = "#7a3a00"


def _measurable(layer) -> bool:
    return is_greyscale_image(layer)


def ellipse_paths(result: DiffractionCalibration, points: int = 90) -> list[np.ndarray]:
    """Each fitted ring as a closed path of (y, x) detector points."""
    phi = np.linspace(0, 2 * math.pi, points)
    alpha = math.radians(result.angle_deg)
    q = math.sqrt(result.axis_ratio)
    cy, cx = result.centre
    paths = []
    for ring in result.rings:
        along = ring.radius_px * q * np.cos(phi)
        across = ring.radius_px / q * np.sin(phi)
        dx = along * math.cos(alpha) - across * math.sin(alpha)
        dy = along * math.sin(alpha) + across * math.cos(alpha)
        paths.append(np.column_stack([cy + dy, cx + dx]))
    return paths


class ProfilePlot(ThemedPlot):
    """The azimuthal profile after the distortion is removed, the standard's rings marked."""

    def __init__(self, viewer):
        super().__init__(viewer, figsize=(4.0, 2.4), min_height=190)
        self.axes = self.figure.add_subplot(1, 1, 1)
        self.result = None
        self.show_empty("Calibrate to see the azimuthal profile")

    def show(self, result: DiffractionCalibration | None) -> None:
        self.result = result
        self.redraw()

    def redraw(self) -> None:
        result = self.result
        if result is None:
            self.show_empty("Calibrate to see the azimuthal profile")
            return
        if len(result.profile) == 0:
            self.show_empty("a single crystal's spots: no azimuthal profile")
            return
        self.show_axes()
        axes = self.axes
        axes.clear()
        radius, profile = result.profile_radius_px, result.profile
        axes.plot(radius, profile, color="#4ad2ff", lw=1)
        wavelength = electron_wavelength(result.beam_energy)
        top = float(np.nanmax(profile)) if len(profile) else 1.0
        fitted = {r.label for r in result.rings}
        for reflection in get_standard(result.standard).reflections(0.5e-10):
            sin_theta = wavelength / (2 * reflection.d_spacing)
            if sin_theta >= 1:
                continue
            r = result.camera_length_px * math.tan(2 * math.asin(sin_theta))
            if len(radius) == 0 or r > radius[-1]:
                break
            colour = "#ffb000" if reflection.label in fitted else "#888888"
            axes.axvline(r, color=colour, lw=0.8, ls="--")
            axes.text(r, top, reflection.label, color=colour, fontsize=7, rotation=90, va="top")
        axes.set_xlabel("undistorted radius (px)")
        axes.set_ylabel("mean intensity")
        self.style()
        self.canvas.draw_idle()


class CameraLengthWidget(ToolDock):
    """Camera length, centre and elliptical distortion from a polycrystalline ring pattern."""

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.result: DiffractionCalibration | None = None
        self._result_layer = None
        self._image = None
        self.task = self.long_task("stop the calibration (Esc)")

        self.layer = self.layer_picker(
            "Image", "the image layer of the diffraction pattern (2D, a stack or 4D)", _measurable
        )
        self.frames = widgets.ComboBox(
            label="Frames",
            choices=[
                ("displayed frame", "displayed"),
                ("mean of all frames", "mean"),
                ("maximum of all frames", "max"),
            ],
            value="mean",
            visible=False,
            tooltip="for a stack or 4D dataset: calibrate the frame shown, or the mean "
            "(maximum) pattern of all frames, computed in one lazy pass in the worker",
        )
        self.kind = widgets.ComboBox(
            label="Specimen",
            choices=[
                ("polycrystal (rings)", ""),
                ("single crystal along [001]", "001"),
                ("single crystal along [011]", "011"),
            ],
            value="",
            tooltip="rings of a polycrystalline standard, or the spots of a single crystal of "
            "the (cubic) standard along a zone axis",
        )
        self.standard = widgets.ComboBox(
            label="Standard",
            choices=list(STANDARDS),
            value="Au",
            tooltip="the polycrystalline standard: "
            + "; ".join(
                f"{k} {s.space_group}, a = {s.lattice_parameter * 1e10:.4f} Å"
                for k, s in STANDARDS.items()
            ),
        )
        self.beam_energy = widgets.FloatSpinBox(
            label="Beam energy (kV)",
            value=200.0,
            min=1.0,
            max=3000.0,
            step=10.0,
            tooltip="accelerating voltage, kV",
        )
        self.detector_pixel = widgets.FloatSpinBox(
            label="Detector pixel (µm)",
            value=15.0,
            min=0.1,
            max=1000.0,
            step=1.0,
            tooltip="physical detector pixel, µm (binned: times the binning)",
        )
        self.detector_pixel.native.setDecimals(3)
        self.nominal = widgets.FloatSpinBox(
            label="Nominal camera length (mm)",
            value=0.0,
            min=0.0,
            max=1e5,
            step=10.0,
            tooltip="the camera length the microscope shows (the table's setting); 0 = unknown",
        )
        self.field_sources = FieldSources(
            {
                "beam_energy": self.beam_energy,
                "detector_pixel_size": self.detector_pixel,
                "camera_length": self.nominal,
            }
        )
        self.run_button = widgets.PushButton(
            text="Calibrate", tooltip="fit the rings of the standard, in a worker (Esc cancels)"
        )
        self.result_label = message_label("Result", "—")
        self.add_button = widgets.PushButton(
            text="Add to table",
            enabled=False,
            tooltip="add this calibration to the table below and to the calibration history",
        )
        self.export_button = widgets.PushButton(
            text="Export result…",
            enabled=False,
            tooltip="the values with units, sigmas and sources, py4DSTEM's Q_pixel_size and "
            "p_ellipse, and the overfocus twin's camera length (JSON)",
        )
        self.hspy_button = widgets.PushButton(
            text="Save pattern as .hspy…",
            enabled=False,
            tooltip="the pattern with calibrated HyperSpy/pyxem signal axes (1/nm)",
        )
        self.plot = ProfilePlot(napari_viewer)
        self.history = DriftView(napari_viewer, "camera_length", self._setting)
        self.session = SessionTable(
            self,
            CameraLengthTable(),
            title="camera lengths",
            csv_name="camera_lengths.csv",
            editable=True,
        )
        self.extend(
            [
                self.layer,
                self.frames,
                self.kind,
                self.standard,
                self.beam_energy,
                self.detector_pixel,
                self.nominal,
                self.run_button,
                self.progress,
                self.cancel_button,
                self.result_label,
                self.add_button,
                self.export_button,
                self.hspy_button,
            ]
        )
        plot_box = widgets.Container(labels=False)
        plot_box.margins = (0, 0, 0, 0)
        plot_box.native.layout().addWidget(self.plot.canvas)
        self.extend([plot_box, self.session, self.history.widgets, self.status])
        self.layer.changed.connect(self._layer_changed)
        self.run_button.changed.connect(lambda: self.run())
        self.add_button.changed.connect(lambda: self.add_to_table())
        self.export_button.changed.connect(lambda: self._export_dialog())
        self.hspy_button.changed.connect(lambda: self._hspy_dialog())
        self._layer_changed()
        self.refresh_table()

    # -- inputs ---------------------------------------------------------------------------
    @property
    def table(self) -> CameraLengthTable:
        return self.session.table

    def set_layer(self, layer) -> None:
        """Choose the pattern to calibrate (e.g. from the menu action)."""
        self.choose(self.layer, layer, _measurable, "a greyscale image layer")

    def _layer_changed(self, event=None):
        layer = self.layer.value
        if layer is None:
            self.show_hint("open a ring pattern of a polycrystalline standard (e.g. the sample)")
            return
        self.frames.visible = layer.ndim > 2
        metadata = layer.metadata.get("emcal", layer.metadata)
        values = (metadata.get("instrument") or {}).get("values", {})
        sources = instrument_sources(metadata)
        filled = {}
        with self.field_sources.quiet():
            if "beam_energy" in values:
                self.beam_energy.value = from_si(float(values["beam_energy"]["value"]), "keV")
                filled["beam_energy"] = sources.get("beam_energy")
            if "detector_pixel_size" in values:
                self.detector_pixel.value = from_si(
                    float(values["detector_pixel_size"]["value"]), "um"
                )
                filled["detector_pixel_size"] = sources.get("detector_pixel_size")
            nominal = values.get("camera_length")
            self.nominal.value = from_si(float(nominal["value"]), "mm") if nominal else 0.0
            if nominal:
                filled["camera_length"] = sources.get("camera_length")
        self.field_sources.filled(filled)
        self.show_hint("check the standard, beam energy and detector pixel, then Calibrate")

    def _setting(self) -> str | None:
        return (
            beam_setting(
                nominal_camera_length_mm=self.nominal.value or None,
                beam_energy_kev=float(self.beam_energy.value),
            )
            or None
        )

    # -- running --------------------------------------------------------------------------
    def run(self) -> bool:
        """Calibrate the chosen layer in a worker; False when nothing was started."""
        layer = self.layer.value
        if layer is None:
            self.error("Choose the image layer of a ring pattern first.")
            return False
        if self.task.running:
            self.status.value = "still calibrating the previous pattern…"
            return False
        how = self.frames.value if layer.ndim > 2 else "displayed"
        if how == "displayed":
            plane = displayed_plane(self.viewer, layer)
        else:
            plane = layer.data[0] if layer.multiscale else layer.data
        sources = {
            "beam_energy": self.field_sources.sources["beam_energy"],
            "detector_pixel_size": self.field_sources.sources["detector_pixel_size"],
        }
        kwargs = {
            "standard": self.standard.value,
            "beam_energy": to_si(self.beam_energy.value, "keV"),
            "detector_pixel_size": to_si(self.detector_pixel.value, "um"),
            "sources": sources,
        }

        zone = self.kind.value

        def work(report):
            image = np.asarray(plane) if how == "displayed" else reduce_frames(plane, how)
            if zone:
                return image, calibrate_spots(image, zone=zone, **kwargs)
            return image, calibrate_camera_length(image, progress=report, **kwargs)

        def done(value):
            image, result = value
            return self._showing(layer, image, result)  # in steps (tasks.Steps)

        def failed(exc):
            self.result_label.value = f"refused: {exc}" if str(exc) else "—"
            self.add_button.enabled = self.export_button.enabled = False
            self.hspy_button.enabled = False

        self.run_button.enabled = False
        return self.task.start(
            f"calibrating {layer.name}",
            work,
            self.while_present(done, layer),
            on_finished=lambda: setattr(self.run_button, "enabled", True),
            on_error=failed,
        )

    def _show(self, layer, image, result: DiffractionCalibration) -> None:
        for _ in self._showing(layer, image, result):
            pass

    def _showing(self, layer, image, result: DiffractionCalibration):
        """:meth:`_show` as a generator, a step per layer and for the plot, one per turn
        of the event loop (``tasks.Steps``): all at once would freeze the window."""
        self.result, self._result_layer, self._image = result, layer, image
        lines = result.summary_lines()[:4]
        lines.append(
            "ring residuals (px): "
            + ", ".join(f"{r.label} {r.residual_px:+.2f}±{r.sigma_px:.2f}" for r in result.rings)
        )
        self.result_label.value = "\n".join(lines)
        self.status.value = "; ".join(result.notes[:-1]) or "done"
        self.show_hint("Add to table (nominal camera length first), or Export result")
        self.add_button.enabled = self.export_button.enabled = self.hspy_button.enabled = True
        scale = list(layer.scale[-2:])
        translate = list(layer.translate[-2:])
        self._show_rings(layer, ellipse_paths(result), scale, translate)
        yield
        self.put_output(
            CENTRE,
            np.array([result.centre]),
            kind="points",
            size=6,
            face_color="#ff3060",
            scale=scale,
            translate=translate,
        )
        yield
        self.plot.show(result)

    def _show_rings(self, layer, paths, scale, translate) -> None:
        """The fitted rings as closed paths, updated in place (napari's shapes)."""
        rings = self.find_output(RINGS)
        if rings is None:
            follow_renames(self.viewer, layer)
            self.viewer.add_shapes(
                paths,
                shape_type="path",
                name=f"{layer.name}{RINGS}",
                edge_color="#ffb000",
                edge_width=1.0,
                scale=scale,
                translate=translate,
            )
            return
        rings.selected_data = set(range(rings.nshapes))
        rings.remove_selected()
        rings.add_paths(paths, edge_color="#ffb000", edge_width=1.0)
        rings.scale, rings.translate = scale, translate

    # -- results --------------------------------------------------------------------------
    def add_to_table(self) -> int | None:
        """Add the calibration with the nominal camera length; returns the row index."""
        if self.result is None:
            self.error("Calibrate first.")
            return None
        nominal = to_si(self.nominal.value, "mm") if self.nominal.value else None
        name = self._result_layer.name if self._result_layer else ""
        index = self.table.add(self.result, nominal_camera_length=nominal, image=name)
        self.refresh_table()
        result = self.result
        self.status.value = keep_in_history(
            "camera_length",
            *result.history_values(),
            setting=self._setting() or "",
            source=name,
        )
        self.history.refresh()
        return index

    def export_document(self) -> dict:
        """The result as the CLI's JSON, with py4DSTEM's fields and the twin's values."""
        result = self.result
        document = {
            "source": self._result_layer.name if self._result_layer else "",
            **result.to_json(),
            "py4dstem": py4dstem_calibration(result),
            "overfocus_twin": twin_values(result),
        }
        return document

    def export(self, path) -> None:
        if self.result is None:
            self.error("Calibrate first.")
            return
        from pathlib import Path

        Path(path).write_text(json.dumps(self.export_document(), indent=2))
        self.status.value = f"wrote {path}"

    def _export_dialog(self):
        path = save_path(self.native, "Export calibration", "camera_length.json", "JSON (*.json)")
        if path is not None:
            self.export(path)

    def _hspy_dialog(self):
        if self.result is None or self._image is None:
            self.error("Calibrate first.")
            return
        path = save_path(self.native, "Save pattern", "pattern.hspy", "HyperSpy (*.hspy)")
        if path is not None:
            write_pattern_hspy(path, self._image, self.result)
            self.status.value = f"wrote {path}"

    def refresh_table(self) -> None:
        frame = self.table.frame
        flagged = frame["ratio_outlier"]
        self.session.view.show(frame, {row: OUTLIER_COLOUR for row in flagged[flagged].index})
        if int(flagged.sum()):
            self.status.value = (
                f"{int(flagged.sum())} row(s) with calibrated/nominal off the median: "
                "check the nominal camera length entered"
            )
