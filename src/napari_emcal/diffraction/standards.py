"""Polycrystalline calibration standards: lattices, allowed reflections, ring intensities.

Each built-in standard carries its lattice parameter with the reference it comes from, its
space group and its atoms. The allowed reflections follow from the structure factor
(summing over the atoms of the conventional cell, so the extinction rules of the space
group come out of the sum rather than being typed in), and the kinematic ring intensities
from tabulated electron scattering factors with a Debye–Waller factor.

Pure Python/NumPy: no Qt, no napari.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidDataError, InvalidParameterError

__all__ = [
    "PENG_1996",
    "ZONES",
    "zone_reflections",
    "STANDARDS",
    "Reflection",
    "Standard",
    "electron_scattering_factor",
    "electron_wavelength",
    "get_standard",
    "read_d_spacings",
    "write_d_spacings",
]

#: Elastic electron scattering factors, five-Gaussian fits valid for 0 <= s <= 2 Å⁻¹:
#: ``f(s) = sum a_i exp(-b_i s²)`` in Å, with ``s = sin(θ)/λ = 1/(2d)`` in Å⁻¹.
#: L.-M. Peng, G. Ren, S. L. Dudarev & M. J. Whelan, "Robust parameterization of elastic and
#: absorptive electron atomic scattering factors", Acta Cryst. A52 (1996) 257–276, as
#: reprinted in International Tables for Crystallography Vol. C, Table 4.3.2.2.
#: element: ((a1..a5), (b1..b5))
PENG_1996: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "O": ((0.0365, 0.1729, 0.5805, 0.8814, 0.3121), (0.0652, 0.6184, 2.9449, 9.6298, 28.2194)),
    "Mg": ((0.1130, 0.5575, 0.9046, 2.1580, 1.4735), (0.1356, 1.3579, 6.9255, 32.3165, 92.1138)),
    "Al": ((0.1165, 0.5504, 1.0179, 2.6295, 1.5711), (0.1295, 1.2619, 6.8242, 28.4577, 88.4750)),
    "Si": ((0.0567, 0.3365, 0.8104, 2.4960, 2.1186), (0.0582, 0.6155, 3.2522, 16.7929, 57.6767)),
    "Cl": ((0.0799, 0.3891, 1.0037, 2.3332, 1.0507), (0.0694, 0.6443, 3.5351, 12.5058, 35.8633)),
    "Fe": ((0.1929, 0.8239, 1.8689, 2.3694, 1.9060), (0.1087, 1.0806, 4.7637, 22.8500, 76.7309)),
    "Ag": ((0.2739, 1.0503, 3.1564, 2.7543, 1.4328), (0.0881, 0.8028, 4.4451, 18.7011, 79.2633)),
    "W": ((0.3661, 1.6191, 3.2455, 4.0856, 3.2064), (0.0761, 0.7543, 4.0952, 18.2886, 68.0967)),
    "Au": ((0.3055, 1.3945, 2.9617, 3.8990, 2.0026), (0.0596, 0.5827, 3.1035, 11.9693, 47.9106)),
    "Tl": ((0.3511, 1.5489, 3.5676, 4.0900, 2.5251), (0.0672, 0.6522, 3.7420, 15.9791, 65.1354)),
}

# Relativistic electron wavelength: CODATA 2018 exact / recommended constants.
_H = 6.62607015e-34  # J s
_M0 = 9.1093837015e-31  # kg
_E = 1.602176634e-19  # C
_C = 299792458.0  # m/s


def electron_wavelength(beam_energy_ev: float) -> float:
    """Relativistic electron wavelength (m) for an accelerating voltage of ``beam_energy_ev``.

    ``λ = h / sqrt(2 m₀ e V (1 + e V / (2 m₀ c²)))``; 200 keV gives 2.5079 pm.

    Raises
    ------
    InvalidParameterError
        If the energy is not a finite number between 1 keV and 10 MeV.
    """
    energy = float(beam_energy_ev)
    if not (math.isfinite(energy) and 1e3 <= energy <= 1e7):
        raise InvalidParameterError(
            f"beam energy {beam_energy_ev} eV is outside 1 keV – 10 MeV (give it in eV)"
        )
    work = _E * energy
    return _H / math.sqrt(2 * _M0 * work * (1 + work / (2 * _M0 * _C**2)))


def electron_scattering_factor(element: str, s_per_angstrom) -> np.ndarray:
    """Elastic electron scattering factor (Å) of ``element`` at ``s = sin θ/λ`` (Å⁻¹), from
    :data:`PENG_1996`."""
    try:
        a, b = PENG_1996[element]
    except KeyError:
        raise InvalidParameterError(
            f"no electron scattering factor for {element!r}; known: {', '.join(PENG_1996)}"
        ) from None
    s2 = np.asarray(s_per_angstrom, float) ** 2
    return sum(ai * np.exp(-bi * s2) for ai, bi in zip(a, b))


@dataclass(frozen=True)
class Reflection:
    """One ring of a polycrystal: a family of lattice planes.

    Attributes
    ----------
    hkl : (h, k, l)
        Miller indices of the family's representative (h >= k >= l >= 0).
    d_spacing : float
        Interplanar spacing (m).
    multiplicity : int
        Number of planes in the family.
    intensity : float
        Kinematic ring intensity, relative to the strongest ring (1).
    """

    hkl: tuple[int, int, int]
    d_spacing: float
    multiplicity: int
    intensity: float

    @property
    def label(self) -> str:
        return "".join(str(i) for i in self.hkl)


@dataclass(frozen=True)
class Standard:
    """A cubic polycrystalline calibration standard, or a list of d-spacings.

    Parameters
    ----------
    name : str
        Short name (``"Au"``).
    lattice_parameter : float or None
        Cubic lattice parameter (m); None for a d-spacing list.
    space_group : str
        Hermann–Mauguin symbol.
    atoms : tuple of (element, (x, y, z), B)
        The conventional cell's atoms in fractional coordinates, with the isotropic
        Debye–Waller factor B (Å²) at room temperature.
    reference : str
        Where the lattice parameter comes from.
    d_list : tuple of (d (m), relative intensity, label)
        For a d-spacing list only.
    """

    name: str
    lattice_parameter: float | None
    space_group: str = ""
    atoms: tuple = ()
    reference: str = ""
    d_list: tuple = field(default=())

    def reflections(self, d_min: float = 0.6e-10, *, weak: float = 1e-6) -> list[Reflection]:
        """The rings with ``d >= d_min`` (m), strongest-normalised, in order of decreasing d.

        Reflections whose structure factor vanishes (relative ``|F|²`` below ``weak``) are
        extinct and left out; families with the same d (e.g. 333 and 511) are merged into
        one ring with their multiplicities and intensities summed.
        """
        if not d_min > 0:
            raise InvalidParameterError(f"d_min must be positive; got {d_min}")
        if self.lattice_parameter is None:
            rows = sorted((r for r in self.d_list if r[0] >= d_min), key=lambda r: -r[0])
            top = max((i for _, i, _ in rows), default=1.0) or 1.0
            return [_ListReflection(label, d, 1, i / top) for d, i, label in rows]
        a = self.lattice_parameter
        a_angstrom = a * 1e10
        n_max = int(math.floor(a / d_min))
        families: dict[int, list] = {}
        for h in range(n_max + 1):
            for k in range(h + 1):
                for m in range(k + 1):
                    n2 = h * h + k * k + m * m
                    if n2 == 0 or a / math.sqrt(n2) < d_min:
                        continue
                    f2 = self._f_squared((h, k, m), a_angstrom)
                    families.setdefault(n2, []).append(((h, k, m), f2, _multiplicity((h, k, m))))
        strongest = max((f2 for fam in families.values() for _, f2, _ in fam), default=0.0)
        rings = []
        for n2 in sorted(families):
            members = [(hkl, f2, mult) for hkl, f2, mult in families[n2] if f2 > weak * strongest]
            if not members:
                continue
            d = a / math.sqrt(n2)
            mult = sum(m for _, _, m in members)
            # Kinematic ring intensity per unit length of ring (what an azimuthal average
            # shows): proportional to multiplicity x |F|² x d² (Vainshtein, Structure
            # Analysis by Electron Diffraction, 1964).
            intensity = sum(m * f2 for _, f2, m in members) * (d * 1e10) ** 2
            rings.append(Reflection(members[0][0], d, mult, intensity))
        top = max((r.intensity for r in rings), default=1.0)
        return [Reflection(r.hkl, r.d_spacing, r.multiplicity, r.intensity / top) for r in rings]

    def _f_squared(self, hkl, a_angstrom: float) -> float:
        h, k, m = hkl
        s = math.sqrt(h * h + k * k + m * m) / (2 * a_angstrom)  # sin θ / λ = 1 / (2d), Å⁻¹
        total = 0j
        for element, (x, y, z), b_factor in self.atoms:
            f = float(electron_scattering_factor(element, s)) * math.exp(-b_factor * s * s)
            total += f * np.exp(2j * math.pi * (h * x + k * y + m * z))
        return abs(total) ** 2

    def d_spacing_text(self, d_min: float = 0.6e-10) -> str:
        """The rings as a pyFAI-style calibrant file: one d-spacing in Å a line, then
        ``# (hkl) multiplicity intensity`` as a comment."""
        lines = [f"# {self.name}: {self.space_group} {self.reference}".rstrip()]
        if self.lattice_parameter:
            lines.append(f"# cubic, a = {self.lattice_parameter * 1e10:.6f} Å")
        lines.append("# d (Å), relative intensity # (hkl) multiplicity")
        for r in self.reflections(d_min):
            lines.append(
                f"{r.d_spacing * 1e10:.6f} {r.intensity:.4g} # ({r.label}) {r.multiplicity}"
            )
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _ListReflection(Reflection):
    """A ring of a d-spacing list: ``hkl`` holds its label text."""

    @property
    def label(self) -> str:
        return str(self.hkl)


def _multiplicity(hkl) -> int:
    """Number of {hkl} planes in the cubic point group m-3m (counting ± planes)."""
    return len(
        {
            tuple(s * v for s, v in zip(signs, perm))
            for perm in itertools.permutations(hkl)
            for signs in itertools.product((1, -1), repeat=3)
        }
    )


_FCC = ((0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0))


def _fcc(element: str, b_factor: float, shift=(0.0, 0.0, 0.0)) -> tuple:
    return tuple(
        (element, tuple(p + s for p, s in zip(position, shift)), b_factor) for position in _FCC
    )


#: The built-in standards. Lattice parameters at room temperature; B factors (Å²) are
#: room-temperature values of the order given by Peng, Ren, Dudarev & Whelan, Acta Cryst.
#: A52 (1996) 456–470 and only set the relative ring intensities (which rings are expected
#: to be visible), never the ring positions.
STANDARDS: dict[str, Standard] = {
    "Au": Standard(
        "Au",
        4.0786e-10,
        "Fm-3m",
        _fcc("Au", 0.62),
        "Swanson & Tatge, NBS Circular 539 vol. I (1953), PDF 04-0784: a = 4.0786 Å (26 °C)",
    ),
    "Al": Standard(
        "Al",
        4.0494e-10,
        "Fm-3m",
        _fcc("Al", 0.85),
        "Swanson & Tatge, NBS Circular 539 vol. I (1953), PDF 04-0787: a = 4.0494 Å (25 °C)",
    ),
    "Ag": Standard(
        "Ag",
        4.0862e-10,
        "Fm-3m",
        _fcc("Ag", 0.64),
        "Swanson & Tatge, NBS Circular 539 vol. I (1953), PDF 04-0783: a = 4.0862 Å (26 °C)",
    ),
    "Si": Standard(
        "Si",
        5.431020511e-10,
        "Fd-3m",
        _fcc("Si", 0.46) + _fcc("Si", 0.46, (0.25, 0.25, 0.25)),
        "CODATA 2018: a = 5.431020511 Å (22.5 °C, vacuum)",
    ),
    "MgO": Standard(
        "MgO",
        4.2112e-10,
        "Fm-3m",
        _fcc("Mg", 0.31) + _fcc("O", 0.34, (0.5, 0.0, 0.0)),
        "ICDD PDF 45-0946 (periclase): a = 4.2112 Å",
    ),
    "TlCl": Standard(
        "TlCl",
        3.8340e-10,
        "Pm-3m",
        (("Tl", (0.0, 0.0, 0.0), 2.4), ("Cl", (0.5, 0.5, 0.5), 2.4)),
        "ICDD PDF 06-0486 (TlCl, CsCl type): a = 3.8340 Å. Evaporated films are quoted "
        "at 3.842 Å by a supplier (SPI Supplies, TEM diffraction standards): 0.2 % apart, "
        "so below 0.2 % use the lattice parameter certified for the film in hand",
    ),
}

#: Patterns the tests and the simulator use as *wrong* standards (never offered as a
#: calibrant): α-Fe and W, body-centred cubic.
OTHER_STRUCTURES: dict[str, Standard] = {
    "Fe": Standard(
        "Fe", 2.8665e-10, "Im-3m", (("Fe", (0, 0, 0), 0.35), ("Fe", (0.5, 0.5, 0.5), 0.35)), "α-Fe"
    ),
    "W": Standard(
        "W", 3.1652e-10, "Im-3m", (("W", (0, 0, 0), 0.16), ("W", (0.5, 0.5, 0.5), 0.16)), "W"
    ),
}


#: In-plane axes (e1, e2) of the zones offered, as Miller directions; e1 along +x of the
#: simulated pattern before its rotation.
ZONES = {
    "001": ((1, 0, 0), (0, 1, 0)),
    "011": ((1, 0, 0), (0, 1, -1)),
}


def zone_reflections(standard: Standard, zone: str, g_max: float, *, weak: float = 1e-3):
    """The allowed reflections of ``zone`` with ``|g| <= g_max`` (1/m): a list of
    ``(label, d_spacing (m), (g1, g2) in-plane components (1/m), relative |F|²)``."""
    if zone not in ZONES:
        raise InvalidParameterError(f"zone must be one of {', '.join(ZONES)}, not {zone!r}")
    if standard.lattice_parameter is None:
        raise InvalidParameterError("a spot pattern needs a crystal, not a d-spacing list")
    a = standard.lattice_parameter
    e1, e2 = (np.array(v, float) for v in ZONES[zone])
    e1, e2 = e1 / np.linalg.norm(e1), e2 / np.linalg.norm(e2)
    axis = np.cross(e1, e2)
    n = int(math.ceil(g_max * a)) + 1
    rows = []
    for hkl in itertools.product(range(-n, n + 1), repeat=3):
        if hkl == (0, 0, 0) or abs(np.dot(hkl, axis)) > 1e-9:
            continue
        g = np.array(hkl, float) / a
        if np.linalg.norm(g) > g_max:
            continue
        f2 = standard._f_squared(tuple(abs(i) for i in hkl), a * 1e10)
        rows.append(
            (
                "".join(str(abs(i)) for i in sorted(hkl, key=abs, reverse=True)),
                1 / np.linalg.norm(g),
                (float(g @ e1), float(g @ e2)),
                f2,
            )
        )
    top = max((r[3] for r in rows), default=1.0) or 1.0
    return [(lab, d, g, f2 / top) for lab, d, g, f2 in rows if f2 > weak * top]


def get_standard(name_or_path) -> Standard:
    """A built-in standard by name (``"Au"``), or a d-spacing list file (see
    :func:`read_d_spacings`).

    Raises
    ------
    InvalidParameterError
        Unknown name, and no such file.
    """
    if isinstance(name_or_path, Standard):
        return name_or_path
    text = str(name_or_path).strip()
    for key, standard in STANDARDS.items():
        if key.lower() == text.lower():
            return standard
    path = Path(text)
    if path.suffix and path.is_file():
        return read_d_spacings(path)
    raise InvalidParameterError(
        f"unknown standard {text!r}: use one of {', '.join(STANDARDS)} or a d-spacing file (.D)"
    )


def read_d_spacings(path) -> Standard:
    """A d-spacing list as pyFAI's calibrant ``.D`` files write it: one d (Å) per line,
    anything after ``#`` a comment; an optional second number is the ring's relative
    intensity (1 when absent).

    Raises
    ------
    InvalidDataError
        A line that is not a number, or fewer than three spacings.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDataError(f"cannot read the d-spacing list {path}: {exc}") from exc
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        body, _, comment = line.partition("#")
        fields = body.split()
        if not fields:
            continue
        try:
            d = float(fields[0])
            intensity = float(fields[1]) if len(fields) > 1 else 1.0
        except ValueError:
            raise InvalidDataError(
                f"{path.name} line {number}: {line.strip()!r} is not a number"
            ) from None
        if not (math.isfinite(d) and 0.1 < d < 100 and math.isfinite(intensity) and intensity >= 0):
            raise InvalidDataError(f"{path.name} line {number}: d = {d} Å is not plausible")
        label = comment.strip().split(")")[0].lstrip("(") if "(" in comment else f"d={d:g}Å"
        rows.append((d * 1e-10, intensity, label))
    if len(rows) < 3:
        raise InvalidDataError(f"{path.name}: fewer than three d-spacings")
    return Standard(path.stem, None, "", (), f"d-spacing list {path.name}", tuple(rows))


def write_d_spacings(standard: Standard, path, d_min: float = 0.6e-10) -> None:
    """Write ``standard``'s rings as a d-spacing list (:func:`read_d_spacings` reads it)."""
    Path(path).write_text(standard.d_spacing_text(d_min))
