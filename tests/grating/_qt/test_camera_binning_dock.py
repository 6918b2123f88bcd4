"""The dock's Add to table and Save for SerialEM… keep the camera's binning apart from
the finder's working reduction (issue 38 item 1), on a real image larger than the working
size."""

import pytest

from napari_emcal.grating._qt.widget import SERIALEM_PIXEL
from napari_emcal.io.images import open_image
from tests.conftest import real_file

pytestmark = pytest.mark.gui


def test_add_to_table_and_save_for_serialem_keep_the_measured_pixel_size(
    make_napari_viewer, qtbot, tmp_path
):
    image, metadata = open_image(real_file("images/tia_srtio3/16_STOimage_1.ser"))
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name="STO", metadata={"emcal": metadata})
    _, widget = viewer.window.add_plugin_dock_widget("napari-emcal", "Grating pixel size")
    widget.set_layer(layer)
    widget.mode.value = "lattice"
    widget.spacing.value = 0.3905
    widget.run()
    qtbot.waitUntil(lambda: widget._worker is None, timeout=60000)
    result = widget.result
    assert result.found and result.binning > 1  # the default working size reduced it
    widget.add_to_table()
    row = widget.table.frame.iloc[0]
    assert row["binning"] == 1 and row["unbinned_pixel_size_nm"] == pytest.approx(
        result.pixel_size_nm
    )
    widget.table.update(0, mag_index=31)
    widget.session.save_for(SERIALEM_PIXEL, tmp_path / "props.txt")
    (line,) = (tmp_path / "props.txt").read_text().splitlines()
    name, index, _, _, pixel = line.split()
    assert (name, index) == ("RotationAndPixel", "31")
    assert float(pixel) == pytest.approx(result.pixel_size_nm, rel=1e-4)
