"""npe2 contributions: reader, sample data, widgets and menu actions (thin glue)."""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_info, show_warning
from napari.viewer import Viewer

from ..errors import InvalidDataError
from ..io.readers import holds_4d, open_4d, sample_contrast_limits
from ..units import from_si


# -- reader ---------------------------------------------------------------------------
def get_reader(path):
    """npe2 reader: a callable for 3D/4D STEM files and for instrument images (with their
    calibration), else None (a 2D ``.npy``, a plain HDF5 file of images or a Zarr image,
    which record no calibration, are left to napari's own readers)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    if holds_4d(path):
        return read_4d
    from ..io.images import holds_image

    if holds_image(path):
        return read_images
    return None


def read_images(path):
    """Open every image signal of an instrument file as an image layer with its scale and
    units (nm, 1/nm or mrad; pixels with a note when the file records no calibration) and
    the file's instrument values in ``metadata["emcal"]``. Large files stay lazy."""
    from ..io.images import open_signals

    if isinstance(path, list):
        path = path[0]
    try:
        signals = open_signals(path)
    except InvalidDataError as exc:
        show_warning(str(exc))
        raise
    layers = []
    for signal in signals:
        for note in signal.notes:
            (show_info if signal.calibrated else show_warning)(note)
        kwargs = {
            "name": signal.name,
            "scale": signal.scale,
            "units": signal.units,
            "axis_labels": signal.axis_labels,
            "metadata": {"emcal": signal.metadata},
        }
        if not isinstance(signal.data, np.ndarray):  # lazy: contrast from a crop, not all
            kwargs["contrast_limits"] = _crop_contrast_limits(signal.data)
        layers.append((signal.data, kwargs, "image"))
    return layers


def read_4d(path):
    """Open a 4D STEM file lazily as one Dask-backed image layer."""
    if isinstance(path, list):
        path = path[0]
    from ..settings import load_settings

    try:
        ds = open_4d(path, allow_dirs=load_settings()["data_folders"])
    except InvalidDataError as exc:
        show_warning(str(exc))
        raise
    for note in ds.notes:
        show_info(note)
    return [_layer_data(ds.data, ds.metadata)]


def _crop_contrast_limits(data, size: int = 512) -> tuple[float, float]:
    """Contrast limits of a lazy image from a central crop of its first plane (reads only
    the chunks it covers)."""
    from ..display import robust_limits

    plane = data[(0,) * (data.ndim - 2)]
    ny, nx = plane.shape
    y0, x0 = max(0, ny // 2 - size // 2), max(0, nx // 2 - size // 2)
    crop = np.asarray(plane[y0 : y0 + size, x0 : x0 + size], dtype=np.float64)
    return robust_limits(crop)


def _layer_data(data, metadata, name=None, contrast_limits=None):
    from pathlib import Path

    kwargs = {
        "name": name or Path(metadata["source"]).stem,
        "metadata": {"emcal": metadata},
        "contrast_limits": contrast_limits or sample_contrast_limits(data),
        "axis_labels": ("scan_y", "scan_x", "det_y", "det_x"),
    }
    kwargs.update(stem_axes(metadata))
    return (data, kwargs, "image")


def stem_axes(metadata) -> dict:
    """Scale and units of a 4D STEM layer: the scan axes in nm (the scan step), the
    detector axes in µm of the physical detector (its pixel size). napari keeps one unit
    per world axis and the detector axes share the world's last two axes with every 2D
    image (scan-space results, real images in nm): a length there, the detector's true
    one, is what lets them share a viewer without napari dropping units. An axis whose
    size the file does not record stays in pixels."""
    scale, units = [1.0] * 4, ["pixel"] * 4
    scan_step = metadata.get("scan_step")
    if scan_step:
        scale[:2] = [from_si(scan_step[0], "nm"), from_si(scan_step[1], "nm")]
        units[:2] = ["nm", "nm"]
    detector = metadata.get("detector_pixel_size")
    if detector is not None:
        sizes = list(np.broadcast_to(np.asarray(detector, float), (2,)))
        if all(np.isfinite(sizes)) and all(v > 0 for v in sizes):
            scale[2:] = [from_si(v, "µm") for v in sizes]
            units[2:] = ["µm", "µm"]
    return {"scale": scale, "units": tuple(units)}


# -- sample data ------------------------------------------------------------------------
def sample_overfocus_grating():
    """Overfocused 4D STEM, simulated grating (known parameters in the metadata).

    Lazy (frames computed by scan row when first read, in NumPy) and imported without
    the overfocus kernels: napari calls this on its GUI thread, which must not wait for
    the whole dataset or for numba."""
    from ..overfocus.sample import overfocus_grating_lazy

    data, metadata, limits = overfocus_grating_lazy()
    return [_layer_data(data, metadata, "overfocus grating (simulated)", limits)]


def sample_grating_image():
    """Cross-grating replica image (simulated); its true pixel size is in the metadata."""
    from ..samples import grating_image

    image, metadata = grating_image()
    return [
        (image, {"name": "cross grating (simulated)", "metadata": {"emcal": metadata}}, "image")
    ]


def sample_au_ring_pattern():
    """Au ring pattern (simulated): known camera length and ellipticity in the metadata."""
    from ..samples import au_ring_pattern

    image, metadata = au_ring_pattern()
    # the saturated central beam would make the rings black at full range
    limits = [0.0, float(np.percentile(image, 99.5))]
    kwargs = {"name": "Au rings (simulated)", "metadata": {"emcal": metadata}}
    return [(image, {**kwargs, "contrast_limits": limits}, "image")]


def calibrate_camera_length(viewer: Viewer):
    """Dock the camera-length widget on the active ring pattern and calibrate it."""
    return _dock_on_active_image(viewer, "Camera length (rings)", "a ring pattern")


def _dock_on_active_image(viewer: Viewer, dock: str, what: str):
    """Dock ``dock`` on the active greyscale image layer and run its main action; a
    warning naming ``what`` to select when there is none."""
    layer = viewer.layers.selection.active
    if layer is None or getattr(layer, "rgb", True) or layer.ndim < 2:
        show_warning(f"Select a greyscale image layer of {what} first.")
        return None
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", dock)
    widget.set_layer(layer)
    widget.run()
    return widget


def sample_high_defocus_pair():
    """High-defocus pair (simulated): near focus and -150 µm, truth in the metadata."""
    from ..samples import high_defocus_pair

    (near, near_metadata), (far, far_metadata) = high_defocus_pair()
    return [
        (near, {"name": "near focus (simulated)", "metadata": {"emcal": near_metadata}}, "image"),
        (
            far,
            {
                "name": "defocus -150 µm (simulated)",
                "metadata": {"emcal": far_metadata},
                "visible": False,
            },
            "image",
        ),
    ]


def sample_serialem_series():
    """SerialEM image-shift series (simulated): nine records with drift, and its .mdoc."""
    import tempfile

    from ..serialem.series import SERIES_KEY, read_series
    from ..serialem.simulate import SAMPLE_MATRIX, sample_series

    path = sample_series(tempfile.mkdtemp(prefix="emcal-serialem-"))
    stack = np.asarray([r.image for r in read_series(path).records])
    truth = {"matrix": [list(row) for row in SAMPLE_MATRIX]}
    metadata = {"emcal": {SERIES_KEY: str(path), "ground_truth": truth}}
    return [(stack, {"name": "image_shift.mrc", "metadata": metadata}, "image")]


def sample_in_situ_series():
    """In situ series (simulated): a TEM time series whose metadata fill a dose table."""
    from ..samples import in_situ_series

    stack, metadata = in_situ_series()
    return [
        (
            stack,
            {
                "name": "in situ series (simulated)",
                "metadata": {"emcal": metadata},
                "axis_labels": ("time", "y", "x"),
                "scale": (1.0, metadata["pixel_size_nm"], metadata["pixel_size_nm"]),
                "units": ("", "nm", "nm"),
            },
            "image",
        )
    ]


# -- menu actions -----------------------------------------------------------------------
def _active_4d_layer(viewer: Viewer):
    """The active layer when it is 4D, else None (with a warning saying what to select)."""
    layer = viewer.layers.selection.active
    if layer is None or getattr(layer, "ndim", 0) != 4:
        show_warning("Select a 4D STEM image layer (scan_y, scan_x, det_y, det_x) first.")
        return None
    return layer


def calibrate_overfocus(viewer: Viewer):
    """Dock the overfocus widget on the active 4D image layer."""
    layer = _active_4d_layer(viewer)
    if layer is None:
        return None
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Overfocus calibration")
    widget.set_layer(layer)
    return widget


def find_pixel_size_grating(viewer: Viewer):
    """Dock the grating widget on the active image layer and measure it."""
    return _dock_on_active_image(viewer, "Grating pixel size", "a calibration grating")


def measure_high_defocus(viewer: Viewer):
    """Dock the high-defocus widget on the selected pair of image layers."""
    from .._qt.common import is_greyscale_image

    images = [layer for layer in viewer.layers.selection if is_greyscale_image(layer)]
    if not images:
        show_warning("Select the near-focus and the defocused image layers first.")
        return None
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "High-defocus mag")
    if len(images) >= 2:
        from ..highdefocus._qt.widget import order_by_defocus

        widget.set_images(*order_by_defocus(images[:2]))
    else:  # one image selected: it is the defocused one
        widget.set_images(None, images[0])
    widget.status.value = "draw a line on each image ('Draw line on …'), then Measure"
    return widget


def add_to_dose_table(viewer: Viewer):
    """Dock the dose table and add the selected image layers to it."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Dose table")
    widget.add_layers()
    return widget


def check_dataset(viewer: Viewer):
    """Dock the 4D dataset check on the active 4D layer and run it."""
    layer = _active_4d_layer(viewer)
    if layer is None:
        return None
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "4D dataset check")
    widget.set_layer(layer)
    widget.run()
    return widget


def write_hspy(path: str, data, meta: dict) -> list[str]:
    """An image layer as a HyperSpy ``.hspy`` signal (RosettaSciIO): a 4D STEM layer with
    scan (nm) and detector (mrad) axes from what its file records, a 2D image with the
    layer's scale and the units of the space it lies in."""
    from ..io.writers import image_axes
    from ..io.writers import write_hspy as write
    from ..overfocus.export import write_stem_hspy

    metadata = meta.get("metadata") or {}
    emcal = metadata.get("emcal", {})
    name = meta.get("name", "")
    if np.ndim(data) == 4:
        write_stem_hspy(path, data, None, emcal, title=name)
    elif np.ndim(data) == 2:
        scale = list(meta.get("scale") or (1.0, 1.0))[-2:]
        units = emcal.get("units") or [_symbol(u) for u in (meta.get("units") or ("px", "px"))]
        notes = {k: emcal[k] for k in ("role", "source") if k in emcal}
        write(path, data, image_axes(np.shape(data), scale, units[-2:]), title=name, notes=notes)
    else:
        raise InvalidDataError(
            f"a HyperSpy signal is written from a 2D image or a 4D STEM layer; '{name}' has "
            f"{np.ndim(data)} dimensions"
        )
    return [path]


def _symbol(unit) -> str:
    """A unit as its symbol ("nm", "px"), as HyperSpy writes axes."""
    return format(unit, "~") if hasattr(unit, "dimensionality") else str(unit)
