"""The HTML calibration report (issue 22): written for the four samples, with its images
and values, and the comparison with the history."""

import base64
import re

import pytest

from napari_emcal.cli import main
from napari_emcal.history import History


def test_report_of_the_four_samples_holds_their_images_and_values(tmp_path, capsys):
    # an earlier overfocus calibration of the sample, 3° off: the report must call it drift
    History().record(
        "overfocus",
        {"scan_rotation_deg": 80.0, "flip_y": True, "overfocus_m": 1.5e-6},
        {"scan_rotation_deg": 0.02},
        source="earlier",
    )
    out = tmp_path / "report.html"
    assert main(["report", "--samples", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "overfocus: DRIFT since" in printed
    page = out.read_text()
    for title in (
        "Overfocus calibration: simulated grating",
        "Pixel size: simulated grating image",
        "High-defocus pair",
        "Dose table",
        "Calibration history",
    ):
        assert title in page
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 6  # shifted_sum, point, autocorrelation, the pair, the dose plot
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    rotation = float(re.search(r"<td>scan rotation</td><td>([-0-9.]+)</td>", page).group(1))
    assert rotation == pytest.approx(83.0, abs=0.1)  # the sample's truth
    size = float(re.search(r"<td>pixel size</td><td>([0-9.]+)</td>", page).group(1))
    from napari_emcal.samples import sample_recipe

    truth = sample_recipe("grating_image")["pixel_size_nm"]
    assert size == pytest.approx(truth, rel=0.005)
    assert "the sample&#x27;s nominal twin" in page  # where each fixed length came from
    assert "scan_rotation_deg moved by" in page  # the drift, in the history section


def test_report_of_an_empty_history(tmp_path):
    out = tmp_path / "r.html"
    assert main(["report", "--out", str(out)]) == 0
    assert "Calibration history" in out.read_text()
    assert main(["report", "--out", str(out), "--since", "last tuesday"]) == 2
