"""Every dock fits a laptop screen (1366 x 768) beside napari's layer list, and long
messages wrap instead of widening it."""

import pytest

pytestmark = pytest.mark.gui

WIDGETS = [
    "Overfocus calibration",
    "Grating pixel size",
    "High-defocus mag",
    "Dose table",
    "4D dataset check",
    "Camera length (rings)",
    "SerialEM calibrations",
]


@pytest.mark.parametrize("name", WIDGETS)
def test_dock_fits_a_laptop_screen_and_wraps_long_messages(make_napari_viewer, name):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", name)
    hint = widget.native.minimumSizeHint()
    assert hint.height() < 300, f"{name}: dock needs {hint.height()} px (it scrolls)"
    width_before = hint.width()
    widget.status.value = "a long message " * 35  # about 500 characters
    assert widget.native.minimumSizeHint().width() <= max(width_before, 520)


def test_two_docks_fit_a_full_hd_screen(make_napari_viewer):
    viewer = make_napari_viewer()
    for name in ("Overfocus calibration", "Dose table"):
        viewer.window.add_plugin_dock_widget("napari-emcal", name)
    assert viewer.window._qt_window.minimumSizeHint().height() <= 768


@pytest.mark.parametrize("name", WIDGETS)
def test_every_control_has_a_tooltip(make_napari_viewer, name):
    from magicgui.widgets import Label
    from magicgui.widgets.bases import ButtonWidget, ValueWidget

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", name)
    missing = []

    def walk(container):
        for child in container:
            if isinstance(child, Label):
                continue
            if isinstance(child, (ValueWidget, ButtonWidget)):
                if not child.tooltip:
                    missing.append(child.label or getattr(child, "text", type(child).__name__))
            elif hasattr(child, "__iter__"):
                walk(child)

    walk(widget)
    assert not missing, f"{name}: controls without a tooltip: {missing}"


def test_table_headers_in_words_with_units():
    from napari_emcal._qt.tables import _cell, header

    assert header("flux_e_A2_s") == "Flux (e⁻/Å²/s)"
    assert header("relative_rotation_deg") == "Relative rotation (°)"
    assert header("current_used_pa") == "Current used (pA)"
    assert header("image") == "Image"
    assert _cell(5.0) == "5" and _cell(0.123456789) == "0.123457" and _cell(float("nan")) == ""


def test_plots_follow_the_theme_and_say_when_empty(make_napari_viewer):
    viewer = make_napari_viewer()
    _, dose = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    plot = dose.plot
    assert not plot.flux_axes.get_visible()  # empty: a message, not empty axes
    assert "add images" in plot._message.get_text()
    dark = plot.figure.patch.get_facecolor()
    viewer.theme = "light"
    assert plot.figure.patch.get_facecolor() != dark


def test_time_axis_unit_suits_the_span():
    from napari_emcal._qt.plots import time_unit

    assert time_unit(30)[0] == "s" and time_unit(600)[0] == "min"
    assert time_unit(5 * 3600)[0] == "h" and time_unit(6 * 86400)[0] == "days"


@pytest.mark.parametrize("name", WIDGETS)
def test_each_dock_says_what_to_do_next(make_napari_viewer, name):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", name)
    assert widget.hint.startswith("Next: ") and len(widget.hint) > 20


def test_docks_stay_narrow_after_their_main_action(make_napari_viewer, qtbot):
    """Tables and reports fill in without widening the content past the dock (they wrap or
    scroll themselves)."""
    viewer = make_napari_viewer()
    viewer.open_sample("napari-emcal", "in_situ_series")
    _, dose = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    dose.add_layers(list(viewer.layers))
    assert dose.content.minimumSizeHint().width() <= 520
    viewer.open_sample("napari-emcal", "overfocus_grating")
    _, check = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    check.set_layer(viewer.layers["overfocus grating (simulated)"])
    assert check.run()
    qtbot.waitUntil(lambda: not check.task.running, timeout=60000)
    assert check.content.minimumSizeHint().width() <= 520
