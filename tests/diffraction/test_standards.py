import math

import numpy as np
import pytest

from napari_emcal.diffraction.standards import (
    OTHER_STRUCTURES,
    STANDARDS,
    electron_scattering_factor,
    electron_wavelength,
    get_standard,
    read_d_spacings,
    write_d_spacings,
)
from napari_emcal.errors import InvalidDataError, InvalidParameterError


def test_relativistic_wavelength():
    # textbook values: 2.5079 pm at 200 kV, 1.9687 pm at 300 kV, 4.1757 pm at 80 kV
    assert electron_wavelength(200e3) == pytest.approx(2.50793e-12, rel=2e-5)
    assert electron_wavelength(300e3) == pytest.approx(1.96875e-12, rel=2e-5)
    assert electron_wavelength(80e3) == pytest.approx(4.17572e-12, rel=2e-5)
    with pytest.raises(InvalidParameterError):
        electron_wavelength(200)  # kV typed where eV are expected


def test_scattering_factor_decreases_and_is_positive():
    s = np.linspace(0, 2, 50)
    f = electron_scattering_factor("Au", s)
    assert np.all(f > 0) and np.all(np.diff(f) < 0)
    # Peng et al. (1996): f(0) is the sum of the a_i
    assert f[0] == pytest.approx(0.3055 + 1.3945 + 2.9617 + 3.8990 + 2.0026)


def test_every_standard_has_reference_and_rings():
    for name in ("Au", "Al", "Ag", "Si", "TlCl", "MgO"):
        std = STANDARDS[name]
        assert std.reference and std.space_group
        rings = std.reflections(0.9e-10)
        assert len(rings) >= 6
        assert max(r.intensity for r in rings) == pytest.approx(1.0)


def _labels(name, n=8):
    return [r.label for r in get_standard(name).reflections(0.5e-10)[:n]]


def test_extinction_rules():
    # fcc: h, k, l unmixed
    assert _labels("Au", 6) == ["111", "200", "220", "311", "222", "400"]
    # diamond: 200 and 222 extinct (h+k+l = 4n+2, all even)
    assert _labels("Si", 5) == ["111", "220", "311", "400", "331"]
    # CsCl type (primitive): every hkl
    assert _labels("TlCl", 4) == ["100", "110", "111", "200"]
    # bcc: h+k+l even
    assert [r.label for r in OTHER_STRUCTURES["Fe"].reflections(0.8e-10)[:4]] == [
        "110",
        "200",
        "211",
        "220",
    ]


def test_d_spacings_and_multiplicity():
    au = {r.label: r for r in get_standard("Au").reflections()}
    assert au["111"].d_spacing == pytest.approx(4.0786e-10 / math.sqrt(3))
    assert au["111"].multiplicity == 8 and au["200"].multiplicity == 6
    assert au["311"].multiplicity == 24
    # rocksalt: 111 weak (f_Mg - f_O), 200 strong (f_Mg + f_O)
    mgo = {r.label: r for r in get_standard("MgO").reflections()}
    assert mgo["200"].intensity == 1.0 and mgo["111"].intensity < 0.2


def test_d_spacing_file_round_trip(tmp_path):
    path = tmp_path / "Au.D"
    write_d_spacings(get_standard("Au"), path)
    std = get_standard(str(path))
    original = get_standard("Au").reflections()
    assert [r.d_spacing for r in std.reflections()] == pytest.approx(
        [r.d_spacing for r in original], rel=1e-6
    )
    bad = tmp_path / "bad.D"
    bad.write_text("2.35\nabc\n")
    with pytest.raises(InvalidDataError):
        read_d_spacings(bad)
    with pytest.raises(InvalidParameterError):
        get_standard("unobtainium")
