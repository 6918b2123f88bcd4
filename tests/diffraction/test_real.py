"""Real data: the only ring pattern among the project's real files is a low-count AuPd
4D dataset (Merlin on a Titan, 200 kV, nominal camera length 0.6 m) whose rings lie mostly
beyond the detector's inscribed circle, at a few counts per pixel over all 256 frames. The
alloy's lattice parameter is not known, so no camera length could be checked against it;
what is checked is that the tool reads the file's beam energy and refuses rather than
answering."""

from napari_emcal.cli import main
from tests.conftest import real_file


def test_low_count_aupd_dataset_is_refused_with_a_reason(capsys):
    path = real_file("4d/fpd_hdf5/FPD_HDF5.hdf5")
    code = main(["camera-length", str(path), "--detector-pixel-um", "55", "--no-history"])
    captured = capsys.readouterr()
    assert code == 2  # the beam energy came from the file: not asked for
    assert "--beam-energy-kev" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "mean pattern" in captured.out
