import json

import numpy as np
import pytest

from napari_emcal.errors import InvalidParameterError
from napari_emcal.overfocus import TwinParams, rotation_flip_matrix

BASE = dict(
    overfocus=2e-6,
    scan_pixel_size=1e-9,
    camera_length=0.2,
    detector_pixel_size=55e-6,
    cy=31.5,
    cx=30.25,
)


def test_matrix_equals_libertem_apply_correction():
    from libertem.udf.com import apply_correction

    rng = np.random.default_rng(0)
    for angle in rng.uniform(-360, 360, 50):
        for flip in (False, True):
            ours = rotation_flip_matrix(angle, flip)
            ey = apply_correction(np.array([1.0]), np.array([0.0]), angle, flip)
            ex = apply_correction(np.array([0.0]), np.array([1.0]), angle, flip)
            theirs = np.array([[ey[0][0], ex[0][0]], [ey[1][0], ex[1][0]]])
            np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_magnification_and_mapping_by_hand():
    p = TwinParams(**BASE, scan_rotation=90.0, flip_y=False)
    k = 55e-6 * 2e-6 / ((2e-6 + 0.2) * 1e-9)
    assert p.magnification == pytest.approx(k, rel=1e-12)
    # R(90°) maps (y, x) = (1, 0) to (cos, -sin) = (0, -1)
    t = p.detector_to_specimen([BASE["cy"] + 1, BASE["cx"]], [5, 7])
    np.testing.assert_allclose(t, [5, 7 - k], atol=1e-12)
    pf = p.replace(flip_y=True)
    t = pf.detector_to_specimen([BASE["cy"] + 1, BASE["cx"]], [5, 7])
    np.testing.assert_allclose(t, [5, 7 + k], atol=1e-12)


def test_underfocus_inverts_the_shadow():
    p = TwinParams(**{**BASE, "overfocus": -2e-6})
    assert p.magnification < 0


@pytest.mark.parametrize("flip", [False, True])
def test_round_trip_specimen_detector(flip):
    rng = np.random.default_rng(1)
    p = TwinParams(**BASE, scan_rotation=rng.uniform(-180, 180), flip_y=flip)
    d = rng.uniform(0, 64, (100, 2))
    s = rng.uniform(0, 32, (100, 2))
    t = p.detector_to_specimen(d, s)
    np.testing.assert_allclose(p.specimen_to_detector(t, s), d, atol=1e-9)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(overfocus=float("nan")), "overfocus must be finite"),
        (dict(scan_pixel_size=0.0), "scan_pixel_size must be positive"),
        (dict(detector_pixel_size=-1e-6), "detector_pixel_size must be positive"),
        (dict(camera_length=0.0), "camera_length must be positive"),
        (dict(overfocus=0.0), "overfocus must not be 0"),
        (dict(overfocus=-0.2), "must not equal -camera_length"),
        (dict(cy=float("inf")), "cy must be finite"),
        (dict(semiconv=-1e-3), "semiconv must be positive"),
        (dict(flip_y="yes"), "flip_y must be True or False"),
        (dict(scan_rotation="ten"), "scan_rotation must be a number"),
    ],
)
def test_invalid_parameters_are_refused(change, message):
    with pytest.raises(InvalidParameterError, match=message):
        TwinParams(**{**BASE, **change})


def test_json_round_trip_with_units(tmp_path):
    p = TwinParams(**BASE, scan_rotation=-12.34, flip_y=True, semiconv=12e-3)
    path = tmp_path / "twin.json"
    p.save(path)
    doc = json.loads(path.read_text())
    assert doc["parameters"]["camera_length"] == {"value": 0.2, "unit": "m"}
    assert doc["parameters"]["scan_rotation"]["unit"] == "deg"
    assert TwinParams.load(path) == p


def test_json_in_microscope_units_is_converted(tmp_path):
    path = tmp_path / "hand.json"
    path.write_text(
        json.dumps(
            {
                "parameters": {
                    "overfocus": {"value": 2, "unit": "µm"},
                    "scan_pixel_size": {"value": 1, "unit": "nm"},
                    "camera_length": {"value": 200, "unit": "mm"},
                    "detector_pixel_size": {"value": 55, "unit": "um"},
                    "cy": 31.5,
                    "cx": 30.25,
                    "semiconv": {"value": 12, "unit": "mrad"},
                }
            }
        )
    )
    p = TwinParams.load(path)
    assert p.overfocus == pytest.approx(2e-6)
    assert p.camera_length == pytest.approx(0.2)
    assert p.semiconv == pytest.approx(12e-3)


def test_json_errors_are_specific(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidParameterError, match="not valid JSON"):
        TwinParams.load(bad)
    bad.write_text(json.dumps({"parameters": {"overfocus": {"value": 1, "unit": "s"}}}))
    with pytest.raises(InvalidParameterError, match="not a length"):
        TwinParams.load(bad)
    bad.write_text(json.dumps({"parameters": {"overfocus": 1e-6}}))
    with pytest.raises(InvalidParameterError, match="Missing twin parameters"):
        TwinParams.load(bad)


def test_bright_field_mask_radius():
    p = TwinParams(**{**BASE, "cy": 64, "cx": 63.5}, semiconv=10e-3)
    expected = 10e-3 * (2e-6 + 0.2) / 55e-6
    assert p.disk_radius == pytest.approx(expected)
    mask = p.bright_field_mask((128, 128))
    assert mask.sum() == pytest.approx(np.pi * expected**2, rel=0.02)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"overfocus": -0.15 + 3e-17}, "camera_length"),
        ({"semiconv": 1e300}, "semiconv must be positive"),
        ({"camera_length": 1e308}, "beyond any microscope"),
        ({"overfocus": True}, "must be a number"),
        ({"overfocus": 1e-3, "scan_pixel_size": 1e-15}, "shadow magnification"),
    ],
)
def test_absurd_parameters_are_refused(change, message):
    base = dict(
        overfocus=1e-6,
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=1.0,
        cx=1.0,
    )
    with pytest.raises(InvalidParameterError, match=message):
        TwinParams(**{**base, **change})


# -- descan ------------------------------------------------------------------------------
DESCAN = ((0.1, -0.04), (0.02, 0.13))


def test_descan_moves_the_beam_centre_by_hand():
    p = TwinParams(**BASE, descan=[[0.1, -0.04], [0.02, 0.13]])
    assert p.descan == DESCAN and isinstance(p.descan[0][0], float)
    shape = (17, 21)  # s_c = (8, 10)
    np.testing.assert_allclose(p.centre_at([8, 10], shape), [BASE["cy"], BASE["cx"]])
    np.testing.assert_allclose(
        p.centre_at([[10, 10], [8, 15]], shape),
        [[BASE["cy"] + 0.2, BASE["cx"] + 0.04], [BASE["cy"] - 0.2, BASE["cx"] + 0.65]],
    )
    # the pixel at the moving centre sees the scan position itself
    s = np.array([3.0, 19.0])
    np.testing.assert_allclose(p.detector_to_specimen(p.centre_at(s, shape), s, shape), s)
    rng = np.random.default_rng(2)
    d, s = rng.uniform(0, 64, (50, 2)), rng.uniform(0, 16, (50, 2))
    t = p.detector_to_specimen(d, s, shape)
    np.testing.assert_allclose(p.specimen_to_detector(t, s, shape), d, atol=1e-9)
    # the same map as the twin without descan, with the centre moved
    moved = p.replace(descan=((0, 0), (0, 0)))
    np.testing.assert_allclose(t, s + (d - p.centre_at(s, shape)) @ moved.matrix.T, atol=1e-12)


def test_descan_needs_the_scan_shape():
    p = TwinParams(**BASE, descan=DESCAN)
    with pytest.raises(InvalidParameterError, match="scan_shape"):
        p.detector_to_specimen([1, 2], [3, 4])
    with pytest.raises(InvalidParameterError, match="scan_shape"):
        p.specimen_to_detector([1, 2], [3, 4])
    # without descan the scan shape is not needed, and ignored when given
    q = TwinParams(**BASE)
    np.testing.assert_allclose(
        q.detector_to_specimen([1, 2], [3, 4]), q.detector_to_specimen([1, 2], [3, 4], (9, 9))
    )


def test_bright_field_mask_follows_the_beam():
    p = TwinParams(**BASE, semiconv=5e-3, descan=DESCAN)
    still = p.bright_field_mask((64, 64))
    at = p.bright_field_mask((64, 64), scan_yx=(40, 40), scan_shape=(41, 41))
    cy, cx = p.centre_at((40, 40), (41, 41))
    yy, xx = np.indices((64, 64))
    np.testing.assert_allclose([yy[at].mean(), xx[at].mean()], [cy, cx], atol=0.3)
    np.testing.assert_allclose([yy[still].mean(), xx[still].mean()], [31.5, 30.25], atol=0.3)


@pytest.mark.parametrize(
    "bad, message",
    [
        ([[0.1, 0.2]], "2x2"),
        ([[0.1, float("inf")], [0, 0]], "finite"),
        ([[1.5, 0], [0, 0]], "px/px"),
        ("0.1", "2x2"),
    ],
)
def test_bad_descan_is_refused(bad, message):
    with pytest.raises(InvalidParameterError, match=message):
        TwinParams(**BASE, descan=bad)


def test_descan_json_round_trip_and_old_files(tmp_path):
    from napari_emcal.overfocus.twin import load_uncertainty

    p = TwinParams(**BASE, semiconv=4e-3, descan=DESCAN)
    path = tmp_path / "twin.json"
    sigma = np.array([[1e-3, 2e-3], [3e-3, 4e-3]])
    p.save(path, uncertainty={"descan": sigma, "cy": 0.1})
    doc = json.loads(path.read_text())
    assert doc["parameters"]["descan"] == {"value": [list(r) for r in DESCAN], "unit": "px/px"}
    assert doc["uncertainty"]["descan"]["unit"] == "px/px"
    assert TwinParams.load(path) == p
    loaded = load_uncertainty(path)
    np.testing.assert_allclose(loaded["descan"], sigma)
    assert loaded["cy"] == pytest.approx(0.1)
    # a file written before descan existed loads with zero descan
    del doc["parameters"]["descan"]
    path.write_text(json.dumps(doc))
    assert TwinParams.load(path).descan == ((0.0, 0.0), (0.0, 0.0))
    doc["parameters"]["descan"] = {"value": [list(r) for r in DESCAN], "unit": "m"}
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidParameterError, match="px/px"):
        TwinParams.load(path)
