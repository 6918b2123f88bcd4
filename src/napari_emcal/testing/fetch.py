"""Download the real instrument files the tests read, from the public repositories they come
from, each checked against its SHA-256: ``python -m napari_emcal.testing.fetch``.

The files (small recordings of real detectors and microscopes, 12 MB in all) are test data of
RosettaSciIO, openNCEM, atomap, mdocfile and merlintools; each is pinned to a commit of its
repository and listed with its licence in :data:`FILES` (``--list`` prints them). They go
into :func:`cache_dir`, where the tests look after ``$EMCAL_REAL_DATA`` and
``shared/data/real`` beside the checkout. Some are stored in the repositories inside a zip
archive: the archive is checked against its own SHA-256, the member extracted and checked.

pooch does the downloads and hash checks (the test extra installs it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = ["FILES", "REPOSITORIES", "RealFile", "Repository", "cache_dir", "fetch", "main"]


@dataclass(frozen=True)
class Repository:
    """A public repository the files come from, at the commit they were taken from."""

    github: str  # owner/name
    commit: str
    licence: str

    def url(self, path: str) -> str:
        """The raw-file address of ``path`` at :attr:`commit`."""
        return f"https://raw.githubusercontent.com/{self.github}/{self.commit}/{quote(path)}"


R = Repository("hyperspy/rosettasciio", "bc254db14cd7d4d23169b11aeb622a0a7eac1fbe", "GPL-3.0")
N = Repository("ercius/openNCEM", "749ec1a8456f6c84f21021908ad5019b041fb42b", "GPL-3.0")
A = Repository("atomap-dev/atomap", "68fbd1382f6679fd795162baa8257f3dbf309cfc", "GPL-3.0")
D = Repository("teamtomo/mdocfile", "e90d95506e2999a26173d8ffabc2cf92ffcb113d", "BSD-3-Clause")
M = Repository(
    "AndrewHerzing/merlintools",
    "32d9822cd4ff794aaf1d6f6b45f7429ae982ee39",
    "GPL-3.0 (as its setup.py declares)",
)
REPOSITORIES = (R, N, A, D, M)


@dataclass(frozen=True)
class RealFile:
    """One test file: where the tests find it (``relative`` to the data folder), its SHA-256,
    and where it comes from (``path`` in ``repository``; ``member`` of that zip archive,
    whose own SHA-256 is ``archive_sha256``)."""

    relative: str
    sha256: str
    repository: Repository
    path: str
    member: str | None = None
    archive_sha256: str | None = None

    @property
    def url(self) -> str:
        return self.repository.url(self.path)

    @property
    def source(self) -> str:
        where = f"github.com/{self.repository.github} {self.path}"
        return where + (f" (member {self.member!r})" if self.member else "")


#: Every real file the tests read.
FILES = (
    RealFile(
        "4d/merlin_4x2/001_4x2_6bit.hdr",
        "e4cd3ee4c216f04250953a362a9690ef9442f164535d333ebbdc7ec000234ef7",
        R,
        "rsciio/tests/data/quantumdetector/Merlin_navigation4x2_ROI.zip",
        member="001_4x2_6bit.hdr",
        archive_sha256="bde0830c13d1885d822c1df81a26ef20169b84124c372cfa7f7709be0efe78af",
    ),
    RealFile(
        "4d/merlin_4x2/001_4x2_6bit.mib",
        "fa5ab05f3909ba8f579cc908129450e593282ed6200cdf3ef69ac72203ab5fe7",
        R,
        "rsciio/tests/data/quantumdetector/Merlin_navigation4x2_ROI.zip",
        member="001_4x2_6bit.mib",
        archive_sha256="bde0830c13d1885d822c1df81a26ef20169b84124c372cfa7f7709be0efe78af",
    ),
    RealFile(
        "4d/merlin_no_beam/003_merlin_test_roi_sig256x64_nav4x2_hot_pixel_52x_39y.hdr",
        "b94331f8b5e074144c6a64af9a842f0063621278a8967fc59391e1adbbd4a13c",
        R,
        "rsciio/tests/data/quantumdetector/Merlin_navigation4x2_signalNx256_ROI.zip",
        member="003_merlin_test_roi_sig256x64_nav4x2_hot_pixel_52x_39y.hdr",
        archive_sha256="77f2faccadf9b1b4f0f80262b993bc06cabf8d70357460f8b3d92a5c554dd526",
    ),
    RealFile(
        "4d/merlin_no_beam/003_merlin_test_roi_sig256x64_nav4x2_hot_pixel_52x_39y.mib",
        "fb4e360ff2a75b789c994c41172d070ae6125160867cd2b3319f7141e728be39",
        R,
        "rsciio/tests/data/quantumdetector/Merlin_navigation4x2_signalNx256_ROI.zip",
        member="003_merlin_test_roi_sig256x64_nav4x2_hot_pixel_52x_39y.mib",
        archive_sha256="77f2faccadf9b1b4f0f80262b993bc06cabf8d70357460f8b3d92a5c554dd526",
    ),
    RealFile(
        "4d/blockfile/test1.blo",
        "df2c77ba0957f186a7681b6af07493a5cee01d08662db39200112909fefe745e",
        R,
        "rsciio/tests/data/blockfile/test1.blo",
    ),
    RealFile(
        "4d/arina/test_00.h5",
        "a41c6f8f71ab799182804db9431be0d2535a9de2f66a844846db194f25c188b7",
        R,
        "rsciio/tests/data/arina/test_00.h5",
    ),
    RealFile(
        "4d/arina/test_00_data_000001.h5",
        "e2d30c3bda5d9ddce1ffe3e48e031d0f3c16039bfc9df5ff0a909679a9f74f78",
        R,
        "rsciio/tests/data/arina/test_00_data_000001.h5",
    ),
    RealFile(
        "4d/arina/test_00_master.h5",
        "15374fc39af0cf87fa51d1f9dd557217d95facb2aa8f159f2507bc2d52c670d3",
        R,
        "rsciio/tests/data/arina/test_00_master.h5",
    ),
    RealFile(
        "4d/fpd_hdf5/FPD_HDF5.hdf5",
        "5927333c7a4d3fff6e6f557da1501c058360e5868d3e73ba8e66b27f588929dd",
        M,
        "merlintools/tests/test_data/FPD_HDF5.hdf5",
    ),
    RealFile(
        "images/velox_emd/test_si_16x16_215kx.emd",
        "511e2983038542776603ca8bfc7ec8fb95994ab3e723cab7095d4f97d0168f58",
        R,
        "rsciio/tests/data/emd/velox_emd_version11.zip",
        member="Test SI 16x16 215 kx.emd",
        archive_sha256="125f0f6b1517e6bb2a1c44f2157b874fe244bb7716f37a9efbda853f16e395c1",
    ),
    RealFile(
        "images/velox_tem/fei_example_tem_stack.emd",
        "397d5076b0133db608abd985985fad275bf6594823393f72a069020e47c21a1e",
        R,
        "rsciio/tests/data/emd/fei_example_tem_stack.emd",
    ),
    RealFile(
        "images/tvips/TVIPS_bin4.tif",
        "f3d822f97ffc0153114f3671735b2b8dd81317a27223dba90411830f1758f49b",
        R,
        "rsciio/tests/data/tiff/TVIPS_bin4.zip",
        member="TVIPS_bin4.tif",
        archive_sha256="b88cf4d52619225a3c443c737df27b17af93b43850c65bfeee55995809e04b97",
    ),
    RealFile(
        "images/fei_helios/FEI-Helios-Ebeam-8bits.tif",
        "de85e8d4ebb1cd039259953dae0b4c986d15e49ce521b94d2be98374baf9a9cd",
        R,
        "rsciio/tests/data/tiff/tiff_FEI_Helios.zip",
        member="FEI-Helios-Ebeam-8bits.tif",
        archive_sha256="eb9e82342152ffd55024356cefdfeffc6c37159172e99e320132e9228f8c5e82",
    ),
    RealFile(
        "images/dm/test_dm_image_um_unit.dm3",
        "a365d8d19ab6df41c2d8152290541ec393ad2af55228e0580cb727b1d81c80c1",
        R,
        "rsciio/tests/data/tiff/test_dm_image_um_unit.dm3",
    ),
    RealFile(
        "images/dm/test_STEM_image.dm3",
        "fcba806af75bc3c2e50e7d7b0626cba545c1464f39e99c8922b225b0b0b0224c",
        R,
        "rsciio/tests/data/digitalmicrograph/2D/test_STEM_image.dm3",
    ),
    RealFile(
        "images/dm/Fei HAADF-UK_location.dm3",
        "3264325b6f79457737f6ff71e3979ebe508971a592c24e15d9ee4ba876244e56",
        R,
        "rsciio/tests/data/digitalmicrograph/Fei HAADF-UK_location.dm3",
    ),
    RealFile(
        "images/mrc_fei/HAADFscan.mrc",
        "873e9f862eb8f2372589be366317c9940ed71e94e440a219be07c0db977de758",
        R,
        "rsciio/tests/data/mrc/HAADFscan.mrc",
    ),
    RealFile(
        "images/tia_srtio3/16_STOimage_1.ser",
        "fff04a8cea794061b371c264ec9a65b5efde01d358415c4f782d77fe6c6f67dd",
        N,
        "ncempy/data/16_STOimage_1.ser",
    ),
    RealFile(
        "images/tia_srtio3/16_STOimage.emi",
        "65e9fe0a08e0d6242bcd0427d47b720b973ef6644617fb814fcbb4d191c2bb68",
        N,
        "ncempy/data/16_STOimage.emi",
    ),
    RealFile(
        "images/atomap_srtio3_110/test_ADF_cropped.hdf5",
        "18265d654b6e36d0575dcff14aaf0dbdd65236ade92e1383d4a6cd0c70bf0cdb",
        A,
        "atomap/tests/datasets/test_ADF_cropped.hdf5",
    ),
    RealFile(
        "images/serialem_mdoc/tilt_series.mdoc",
        "fd53ede29820450c61f48fed91aec181b703afc687405f87ffc05f406f505652",
        D,
        "tests/test_data/tilt_series.mdoc",
    ),
    RealFile(
        "images/serialem_mdoc/frame_set_single.mdoc",
        "aaf5c5642ce8d19e66323009781271ef205a4becdda3253d57910ac67f76bb50",
        D,
        "tests/test_data/frame_set_single.mdoc",
    ),
    RealFile(
        "images/serialem_mdoc/montage_section.mdoc",
        "8826d1aaa9fe780f5999fb75eebeb4cadaf2e8803d609b4c622547a9d998ebb1",
        D,
        "tests/test_data/montage_section.mdoc",
    ),
)


def cache_dir() -> Path:
    """Where :func:`fetch` puts the files: ``$NAPARI_EMCAL_DATA_CACHE``, else
    ``real-data`` in the user's cache folder (pooch's ``os_cache("napari-emcal")``)."""
    if os.environ.get("NAPARI_EMCAL_DATA_CACHE"):
        return Path(os.environ["NAPARI_EMCAL_DATA_CACHE"])
    import pooch

    return Path(pooch.os_cache("napari-emcal")) / "real-data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(dest=None, *, files=FILES, downloader=None) -> list[Path]:
    """Download ``files`` into ``dest`` (default :func:`cache_dir`) unless they are there
    with the right content; their paths.

    Parameters
    ----------
    dest : path, optional
    files : sequence of RealFile
    downloader : callable, optional
        pooch's downloader (``downloader(url, output_file, pooch)``); default by the
        address's protocol.

    Raises
    ------
    ValueError
        A download or an archive member differs from its SHA-256 (nothing is kept).
    """
    import pooch

    dest = Path(dest) if dest is not None else cache_dir()
    done = []
    for file in files:
        target = dest / file.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if file.member is None:
            pooch.retrieve(
                file.url,
                known_hash=f"sha256:{file.sha256}",
                fname=target.name,
                path=target.parent,
                downloader=downloader,
                progressbar=False,
            )
        elif not (target.exists() and _sha256(target) == file.sha256):
            archive = pooch.retrieve(
                file.url,
                known_hash=f"sha256:{file.archive_sha256}",
                fname=Path(file.path).name,
                path=dest / ".archives" / file.repository.github,
                downloader=downloader,
                progressbar=False,
            )
            with zipfile.ZipFile(archive) as zipped:
                content = zipped.read(file.member)
            found = hashlib.sha256(content).hexdigest()
            if found != file.sha256:
                raise ValueError(
                    f"{file.member} in {file.url} has SHA-256 {found}, expected {file.sha256}"
                )
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(content)
            partial.replace(target)
        done.append(target)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m napari_emcal.testing.fetch",
        description="download the real instrument files the tests read",
    )
    parser.add_argument("--dest", help=f"the folder to fill (default {cache_dir()})")
    parser.add_argument(
        "--list", action="store_true", help="list the files, sources and licences only"
    )
    parser.add_argument(
        "--path",
        metavar="RELATIVE",
        help="fetch this one file (e.g. 4d/blockfile/test1.blo) and print where it is",
    )
    args = parser.parse_args(argv)
    files = FILES
    if args.path:
        files = tuple(f for f in FILES if f.relative == args.path)
        if not files:
            print(f"fetch: error: {args.path} is not one of the listed files", file=sys.stderr)
            return 2
    if args.list:
        for file in FILES:
            print(f"{file.relative}\t{file.repository.licence}\t{file.source}\t{file.sha256}")
        return 0
    try:
        paths = fetch(args.dest, files=files)
    except (OSError, ValueError) as exc:
        print(f"fetch: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the downloader's network errors (requests)
        print(f"fetch: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.path:
        print(paths[0])
    else:
        print(f"{len(paths)} files in {Path(args.dest) if args.dest else cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
