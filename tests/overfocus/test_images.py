import dask.array as da
import numpy as np
import pytest
from skimage.measure import blur_effect

from napari_emcal.errors import InvalidDataError, InvalidParameterError
from napari_emcal.overfocus import OUTPUTS, TwinParams, compute, simulate, specimen_on_scan_grid
from napari_emcal.specimens import detailed_specimen

from .splat_definition import splat_into

SCAN = (64, 64)
DET = (48, 48)


def twin(**changes):
    # k ≈ 0.6 scan px per detector pixel: the shadow spans ~29 scan pixels
    base = dict(
        overfocus=1.2e-6,
        scan_pixel_size=0.5e-9,
        camera_length=0.2,
        detector_pixel_size=50e-6,
        cy=23.5,
        cx=24.0,
        scan_rotation=37.0,
        flip_y=False,
    )
    return TwinParams(**{**base, **changes})


@pytest.fixture(scope="module")
def specimen():
    return detailed_specimen((200, 200), feature_size=1.5, seed=3)


def covered(params, scan=SCAN):
    """Scan pixels that every detector pixel reaches (the fully covered region)."""
    coverage = compute(np.ones(scan + DET, np.float32), params, outputs=["shifted_sum"])[
        "shifted_sum"
    ]
    return coverage > coverage.max() * (1 - 1e-9)


@pytest.mark.parametrize("overfocus", [1.2e-6, -1.2e-6])
@pytest.mark.parametrize("flip", [False, True])
def test_shifted_sum_recovers_specimen_and_wrong_params_blur(specimen, overfocus, flip):
    # a wide shadow (k ≈ 1.1) so that 2° of rotation moves the outer pixels by ~1 px
    true = twin(overfocus=overfocus * 1.9, flip_y=flip)
    scan = (96, 96)
    data = simulate(specimen, scan, DET, true)
    region = covered(true, scan)
    assert region.sum() > 100
    truth = specimen_on_scan_grid(specimen, scan)[region]

    def score(params):
        image = compute(data, params, outputs=["shifted_sum"])["shifted_sum"]
        r = np.corrcoef(image[region], truth)[0, 1]
        ys, xs = np.nonzero(region)
        crop = image[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        return r, blur_effect(crop)

    r_true, blur_true = score(true)
    assert r_true > 0.95
    for wrong in (
        true.replace(scan_rotation=true.scan_rotation + 2.0),
        true.replace(flip_y=not flip),
    ):
        r_wrong, blur_wrong = score(wrong)
        assert r_wrong < r_true
        assert blur_wrong > blur_true + 0.01


def test_point_is_specimen_on_scan_grid(specimen):
    p = twin(cy=24.0)
    data = simulate(specimen, SCAN, DET, p)
    point = compute(data, p, outputs=["point"])["point"]
    np.testing.assert_allclose(point, specimen_on_scan_grid(specimen, SCAN), rtol=1e-6)
    # another detector pixel sees the specimen shifted by the twin's offset
    other = compute(data, p, point=(30, 24), outputs=["point"])["point"]
    np.testing.assert_allclose(other, data[:, :, 30, 24])


def test_selected_matches_point_when_twin_is_right(specimen):
    p = twin(cy=24.0)
    data = simulate(specimen, SCAN, DET, p)
    images = compute(data, p, select=(30, 34))
    footprint = images["selected"] > 0
    r = np.corrcoef(images["selected"][footprint], images["point"][footprint])[0, 1]
    assert r > 0.97
    wrong = compute(data, p.replace(flip_y=True), select=(30, 34))["selected"]
    r_wrong = np.corrcoef(wrong[footprint], images["point"][footprint])[0, 1]
    assert r_wrong < 0.6


def test_aperture_sum_and_sum(specimen):
    p = twin(semiconv=8e-3)
    data = simulate(specimen, SCAN, DET, p)
    images = compute(data, p)
    np.testing.assert_allclose(images["aperture_sum"], data.sum(axis=(0, 1), dtype=np.float64))
    # the bright-field disk is the only lit part of the aperture image
    mask = p.bright_field_mask(DET)
    assert images["aperture_sum"][~mask].max() == 0
    # sum = aperture_sum mapped at the scan centre: its integral scales with 1/k²
    k = abs(p.magnification)
    assert images["sum"].sum() * 1 == pytest.approx(images["aperture_sum"].sum() * k**2, rel=0.05)


def test_semiconv_limits_contributing_pixels(specimen):
    p = twin(semiconv=6e-3)
    data = simulate(specimen, SCAN, DET, p)
    noisy = data.copy()
    noisy[..., ~p.bright_field_mask(DET)] = 1e6  # outside the disk: ignored by shifted_sum
    a = compute(data, p, outputs=["shifted_sum"])["shifted_sum"]
    b = compute(noisy, p, outputs=["shifted_sum"])["shifted_sum"]
    np.testing.assert_allclose(a, b)


@pytest.fixture(scope="module")
def noisy_counts(specimen):
    p = twin(semiconv=9e-3)
    return p, simulate(specimen, (20, 18), (48, 48), p, dose=4000, seed=7)


def test_numpy_memmap_dask_and_libertem_agree(noisy_counts, tmp_path):
    from libertem.api import Context

    from napari_emcal.engine import PassUDF
    from napari_emcal.overfocus import OverfocusPass

    p, data = noisy_counts
    reference = compute(data, p)
    path = tmp_path / "data.npy"
    np.save(path, data.astype(">u4"))  # big-endian on disk
    variants = {
        "float32": data.astype(np.float32),
        "memmap big-endian": np.load(path, mmap_mode="r"),
        "dask odd chunks": da.from_array(data, chunks=(3, 7, 48, 13)),
    }
    ctx = Context.make_with("inline")
    ds = ctx.load("memory", data=data, sig_dims=2, num_partitions=5)
    udf = PassUDF(OverfocusPass(p))
    variants["libertem inline"] = udf.pass_result(ctx.run_udf(ds, udf), ds.shape.nav, ds.shape.sig)
    for name, variant in variants.items():
        images = variant if isinstance(variant, dict) else compute(variant, p)
        assert set(images) == set(OUTPUTS), name
        for key in OUTPUTS:
            np.testing.assert_allclose(
                images[key], reference[key], rtol=1e-12, atol=1e-9, err_msg=f"{name}: {key}"
            )


def test_small_blocks_give_the_same_result(noisy_counts, monkeypatch):
    import napari_emcal.engine.blocks as blocks_mod

    p, data = noisy_counts
    reference = compute(data, p)
    blocks = []
    real_iter_blocks = blocks_mod.iter_blocks
    monkeypatch.setattr(blocks_mod, "BLOCK_BYTES", 1)  # one scan row per block
    monkeypatch.setattr(
        "napari_emcal.engine.passes.iter_blocks",
        lambda data: (blocks.append(b) or b for b in real_iter_blocks(data)),
    )
    chunked = compute(data, p)
    assert len(blocks) == data.shape[0]
    for key in OUTPUTS:
        np.testing.assert_allclose(chunked[key], reference[key], rtol=1e-12, atol=1e-9)


def test_outputs_restricts_and_progress_reports(noisy_counts):
    p, data = noisy_counts
    seen = []
    images = compute(data, p, outputs=["point", "aperture_sum"], progress=seen.append)
    assert set(images) == {"point", "aperture_sum"}
    assert seen[-1] == pytest.approx(1.0)


def test_progress_can_cancel(noisy_counts, monkeypatch):
    import napari_emcal.engine.blocks as blocks_mod
    from napari_emcal.errors import Cancelled

    monkeypatch.setattr(blocks_mod, "BLOCK_BYTES", 1)
    p, data = noisy_counts
    seen = []

    def stop(fraction):
        seen.append(fraction)
        if fraction > 0.3:
            raise Cancelled

    with pytest.raises(Cancelled):
        compute(data, p, progress=stop)
    assert 0.3 < seen[-1] < 0.5  # stopped at the first block past 30 %, not at the end


@pytest.mark.parametrize("shape", [(8, 8), (4, 8, 8), (2, 2, 2, 8, 8)])
def test_wrong_dimensionality_is_refused(shape):
    with pytest.raises(InvalidDataError, match="4D"):
        compute(np.zeros(shape), twin())


def test_empty_and_non_numeric_arrays_are_refused():
    with pytest.raises(InvalidDataError, match="empty"):
        compute(np.zeros((0, 4, 8, 8)), twin())
    with pytest.raises(InvalidDataError, match="dtype"):
        compute(np.zeros((2, 2, 8, 8), dtype=complex), twin())
    with pytest.raises(InvalidDataError, match="4D array"):
        compute([[1, 2]], twin())


def test_bad_params_and_positions_are_refused():
    data = np.zeros((4, 5, 48, 48), np.float32)
    with pytest.raises(InvalidParameterError, match="overfocus must be finite"):
        compute(data, twin(overfocus=float("nan")))
    with pytest.raises(InvalidParameterError, match="params must be a TwinParams"):
        compute(data, {"overfocus": 1e-6})
    with pytest.raises(InvalidParameterError, match=r"select=\(4, 0\) is outside the scan"):
        compute(data, twin(), select=(4, 0))
    with pytest.raises(InvalidParameterError, match="outside the detector"):
        compute(data, twin(), point=(-1, 3))
    with pytest.raises(InvalidParameterError, match="Unknown output"):
        compute(data, twin(), outputs=["sharp"])


def test_memmap_blocks_are_read_from_the_file_where_the_slice_starts(tmp_path):
    """Memmaps are read with file reads (bounded memory); slices must start at their row."""
    from napari_emcal.engine import iter_blocks

    array = (np.arange(6 * 5 * 4 * 3) % 251).astype(">u2").reshape(6, 5, 4, 3)
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    for view, expected in (
        (mapped, array),
        (mapped[1:4], array[1:4]),
        (mapped[:, 1:3], array[:, 1:3]),
    ):
        blocks = [b[0] for b in iter_blocks(view, block_bytes=2 * 5 * 4 * 3 * 2)]
        np.testing.assert_array_equal(np.concatenate(blocks).reshape(expected.shape), expected)


def test_float16_data_are_computed(noisy_counts):
    p, data = noisy_counts
    half = compute(data.astype(np.float16), p)
    full = compute(data.astype(np.float32), p)
    for key in OUTPUTS:
        np.testing.assert_allclose(half[key], full[key], rtol=1e-3, atol=1e-3)


def _naive_splat(data, params):
    """Bilinear splatting frame by frame, pixel by pixel: the definition."""
    sy, sx, dy, dx = data.shape
    out = np.zeros((sy, sx))
    mask = params.bright_field_mask((dy, dx))
    for d_y in range(dy):
        for d_x in range(dx):
            if mask is not None and not mask[d_y, d_x]:
                continue
            o = params.matrix @ (np.array([d_y, d_x]) - params.centre)
            for s_y in range(sy):
                for s_x in range(sx):
                    splat_into(out, float(data[s_y, s_x, d_y, d_x]), np.array([s_y, s_x]) + o)
    return out


#: Geometries of the kernel test: shadow magnification |k| (scan px per detector px) below
#: and above 1, both handednesses, any rotation, the bright-field mask on and off, odd and
#: even shapes (runs of one frame, runs cut at RUN_FRAMES, detectors not a tile multiple).
KERNEL_GEOMETRIES = {
    "k0.37": dict(overfocus=2e-6, scan_rotation=-33.0, flip_y=True),
    "k2.2-underfocus": dict(overfocus=-12e-6, scan_rotation=71.0),
    "k1-rot180": dict(overfocus=5.5e-6, scan_rotation=180.0, flip_y=True),
    "k0.6-semiconv": dict(overfocus=3.3e-6, scan_rotation=12.5, semiconv=1.5e-3),
}


@pytest.mark.parametrize("geometry", sorted(KERNEL_GEOMETRIES))
@pytest.mark.parametrize(
    "dtype",
    [np.uint8, np.uint16, np.uint32, np.int8, np.int32, np.float32, np.float64],
)
def test_run_kernel_matches_the_definition_in_any_frame_order(dtype, geometry):
    """The splat over runs of a scan row equals frame-by-frame splatting, whatever the
    order and grouping of the frames (runs cut, single frames, rows out of order), for
    every dtype and geometry; the aperture sum equals the plain sum."""
    from napari_emcal.overfocus.kernels import RUN_FRAMES, make_plan, splat_frames

    rng = np.random.default_rng(5)
    scan, det = (5, RUN_FRAMES + 7), (9, 13)
    # negative values too where the dtype holds them (dark-subtracted counts)
    low = 0 if np.dtype(dtype).kind == "u" else -30
    data = (low + rng.random(scan + det) * 100).astype(dtype)
    params = TwinParams(
        scan_pixel_size=1e-9,
        camera_length=0.15,
        detector_pixel_size=55e-6,
        cy=4.3,
        cx=6.1,
        **KERNEL_GEOMETRIES[geometry],
    )
    expected = _naive_splat(data, params)
    assert np.count_nonzero(expected) > scan[0] * scan[1] // 2  # the test sees the grid
    plan = make_plan(params, scan, det)
    flat = data.reshape(-1, det[0] * det[1])
    sy, sx = np.divmod(np.arange(flat.shape[0]), scan[1])
    for order in (np.arange(len(flat)), rng.permutation(len(flat))):
        for cut in (len(flat), 5):  # one block, or blocks of 5 frames
            shifted = np.zeros((2, plan.padded_size))
            aperture = np.zeros((2, flat.shape[1]))
            for start in range(0, len(order), cut):
                pick = order[start : start + cut]
                splat_frames(
                    np.ascontiguousarray(flat[pick]), sy[pick], sx[pick], plan, shifted, aperture
                )
            got = plan.crop(shifted.sum(axis=0))
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(
                aperture.sum(axis=0), flat.astype(float).sum(axis=0), rtol=1e-12
            )


def test_run_kernel_takes_strided_frames_and_aperture_views():
    """Frames and aperture accumulators that are views (strided, not C-contiguous) give the
    same sums as contiguous ones: the kernel's vector loads read four pixels at once."""
    from napari_emcal.overfocus.kernels import make_plan, splat_frames

    rng = np.random.default_rng(8)
    scan, det = (4, 12), (7, 10)
    data = rng.random(scan + det) * 50
    params = twin(overfocus=2e-6, cy=3.2, cx=4.6, scan_rotation=21.0)
    plan = make_plan(params, scan, det)
    flat = data.reshape(-1, det[0] * det[1])
    sy, sx = np.divmod(np.arange(flat.shape[0]), scan[1])
    wide = np.zeros((len(flat), 2 * flat.shape[1]))
    wide[:, ::2] = flat
    shifted = np.zeros((2, plan.padded_size))
    aperture_store = np.zeros((2, 3 * flat.shape[1]))
    aperture = aperture_store[:, ::3]
    splat_frames(wide[:, ::2], sy, sx, plan, shifted, aperture)
    np.testing.assert_allclose(plan.crop(shifted.sum(axis=0)), _naive_splat(data, params))
    np.testing.assert_allclose(aperture_store[:, ::3].sum(axis=0), flat.sum(axis=0))
    assert not aperture_store[:, 1::3].any()


@pytest.mark.parametrize("overfocus", [1e-6, 5e-6, -2e-6])
def test_plan_step_per_detector_pixel_sets_a_narrower_tile_at_high_magnification(overfocus):
    """The plan's step is how far a target moves per detector pixel along a row, |M·x̂|,
    and the kernel's tile narrows with it (its accumulator rows stay in cache)."""
    from napari_emcal.overfocus import kernels

    params = twin(overfocus=overfocus, cy=31.5, cx=31.5)
    plan = kernels.make_plan(params, (64, 64), (64, 64))
    assert plan.pixel_step == pytest.approx(np.hypot(*params.matrix[:, 1]), rel=1e-9)
    row = kernels.RUN_FRAMES + 8
    width = kernels._tile_width(row, 64 * 64, plan.pixel_step)
    assert width % 8 == 0 and width * row * 8 <= kernels.TILE_BYTES
    assert width == 8 or width * plan.pixel_step <= kernels.TILE_SPREAD


def test_warm_up_compiles_the_pass_for_the_common_dtypes():
    from napari_emcal.overfocus.images import COMMON_DTYPES, warm_up
    from napari_emcal.overfocus.kernels import _accumulate_runs

    assert warm_up() == [str(np.dtype(d)) for d in COMMON_DTYPES]
    compiled = {str(signature[0].dtype) for signature in _accumulate_runs.signatures}
    assert {str(np.dtype(d)) for d in COMMON_DTYPES} <= compiled


def test_descan_is_compensated_in_the_pass(specimen):
    # the shifted sum of data with descan, computed with that descan, matches the one of
    # the same specimen without descan; computed without it, it blurs
    true = twin(semiconv=5e-3)
    walk = true.replace(descan=((0.15, -0.1), (0.08, 0.12)))
    scan = (48, 48)
    plain = compute(simulate(specimen, scan, DET, true), true, outputs=["shifted_sum"])
    data = simulate(specimen, scan, DET, walk)
    followed = compute(data, walk)
    ignored = compute(data, true, outputs=["shifted_sum"])
    region = covered(true, scan)
    a, b, c = (x["shifted_sum"][region] for x in (plain, followed, ignored))
    assert np.corrcoef(a, b)[0, 1] > 0.995
    assert np.corrcoef(a, c)[0, 1] < 0.95
    # the aperture sum is that of compensated frames: the disk stays sharp at (cy, cx)
    yy, xx = np.indices(DET)
    aperture = followed["aperture_sum"]
    com = [(aperture * g).sum() / aperture.sum() for g in (yy, xx)]
    np.testing.assert_allclose(com, [true.cy, true.cx], atol=0.3)
