"""The real-data download: each file pinned to a commit with its SHA-256, checked on
arrival (a local downloader stands in for the network), and found by the tests' real_file."""

import dataclasses
import hashlib
import re
import zipfile
from pathlib import Path

import pytest

from napari_emcal.testing import fetch as fetch_module
from napari_emcal.testing.fetch import FILES, RealFile, Repository, fetch
from tests import conftest
from tests.conftest import real_file

pytest.importorskip("pooch")
TESTS = Path(__file__).resolve().parents[1]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_real_file_the_tests_read_is_listed_once_with_a_pinned_source():
    listed = [f.relative for f in FILES]
    assert len(listed) == len(set(listed))
    used = set()
    for path in TESTS.rglob("*.py"):  # every "4d/…" or "images/…" file name in the tests
        if path != Path(__file__).resolve():
            used.update(re.findall(r'"((?:4d|images)/[^"]+\.\w+)"', path.read_text("utf-8")))
    assert used and used <= set(listed), used - set(listed)
    for f in FILES:
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256)
        assert re.fullmatch(r"[0-9a-f]{40}", f.repository.commit) and f.repository.licence
        assert (f.member is None) == (f.archive_sha256 is None)
        assert f.url.startswith(f"https://raw.githubusercontent.com/{f.repository.github}/")


def test_the_listed_hashes_are_those_of_the_files_here():
    folder = conftest.real_data_folders()[0]
    present = [f for f in FILES if (folder / f.relative).exists()]
    if not present:
        pytest.skip(f"no real data in {folder} to compare the hashes with")
    for f in present:
        assert _sha((folder / f.relative).read_bytes()) == f.sha256, f.relative


@pytest.fixture
def remote(tmp_path):
    """A repository on disk: a plain file and a zip archive with two members; the listed
    files and a downloader that copies from it, counting its calls."""
    source = tmp_path / "remote"
    source.mkdir()
    plain = b"a real recording"
    (source / "data.blo").write_bytes(plain)
    members = {"a b.hdr": b"header", "a b.mib": b"frames" * 100}
    with zipfile.ZipFile(source / "pair.zip", "w") as zipped:
        for name, content in members.items():
            zipped.writestr(name, content)
    repo = Repository("owner/name", "0" * 40, "MIT")
    archive = _sha((source / "pair.zip").read_bytes())
    files = (
        RealFile("4d/x/data.blo", _sha(plain), repo, "tests/data.blo"),
        RealFile("4d/y/a b.hdr", _sha(b"header"), repo, "tests/pair.zip", "a b.hdr", archive),
        RealFile(
            "4d/y/a b.mib", _sha(members["a b.mib"]), repo, "tests/pair.zip", "a b.mib", archive
        ),
    )
    calls = []

    def downloader(url, output_file, pooch, check_only=False):
        calls.append(url)
        name = url.rsplit("/", 1)[-1]
        Path(output_file).write_bytes((source / name).read_bytes())

    return files, downloader, calls, source


def test_fetch_puts_each_file_where_the_tests_look_and_checks_it(remote, tmp_path):
    files, downloader, calls, _ = remote
    dest = tmp_path / "cache"
    paths = fetch(dest, files=files, downloader=downloader)
    assert paths == [dest / f.relative for f in files]
    assert (dest / "4d/x/data.blo").read_bytes() == b"a real recording"
    assert (dest / "4d/y/a b.hdr").read_bytes() == b"header"
    assert len(calls) == 2  # the archive once for both members
    fetch(dest, files=files, downloader=downloader)
    assert len(calls) == 2  # already there and right: nothing downloaded


def test_a_file_that_differs_from_its_hash_is_refused_and_not_kept(remote, tmp_path):
    files, downloader, _, source = remote
    (source / "data.blo").write_bytes(b"a different recording")
    with pytest.raises(ValueError, match="(?i)hash"):
        fetch(tmp_path / "cache", files=files[:1], downloader=downloader)
    assert not (tmp_path / "cache" / files[0].relative).exists()


def test_an_archive_member_that_differs_from_its_hash_is_refused(remote, tmp_path):
    files, downloader, _, _ = remote
    wrong = dataclasses.replace(files[1], sha256="f" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        fetch(tmp_path / "cache", files=(wrong,), downloader=downloader)
    assert not (tmp_path / "cache" / wrong.relative).exists()


def test_the_tests_find_fetched_files_after_the_other_folders(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    (cache / "4d").mkdir(parents=True)
    (cache / "4d" / "f.mib").write_bytes(b"x")
    monkeypatch.delenv("EMCAL_REAL_DATA", raising=False)
    monkeypatch.setenv("NAPARI_EMCAL_DATA_CACHE", str(cache))
    monkeypatch.setattr(conftest, "SHARED_DATA", tmp_path / "no-shared")
    assert conftest.real_data_folders() == [tmp_path / "no-shared", cache]
    assert real_file("4d/f.mib") == cache / "4d" / "f.mib"
    # EMCAL_REAL_DATA, when set, is the one folder (to run the suite with the files hidden)
    monkeypatch.setenv("EMCAL_REAL_DATA", str(tmp_path / "absent"))
    with pytest.raises(pytest.skip.Exception, match="napari_emcal.testing.fetch"):
        real_file("4d/f.mib")


def test_the_command_lists_sources_and_licences(capsys):
    assert fetch_module.main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(FILES) and all("github.com/" in line for line in lines)


def test_the_command_fetches_one_file_and_says_where(remote, tmp_path, monkeypatch, capsys):
    files, downloader, _, _ = remote
    monkeypatch.setattr(fetch_module, "FILES", files)
    original = fetch_module.fetch
    monkeypatch.setattr(
        fetch_module,
        "fetch",
        lambda dest, files: original(dest, files=files, downloader=downloader),
    )
    assert fetch_module.main(["--dest", str(tmp_path / "c"), "--path", "4d/y/a b.mib"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "c" / "4d/y/a b.mib")
    assert fetch_module.main(["--path", "4d/none.mib"]) == 2
