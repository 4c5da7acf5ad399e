"""The suite reads nothing beside the repository (tests/readguard.py, installed by conftest):
every way of opening or listing a path there fails with the path, caught or not, in the tests
and in the Python processes they start."""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest

from tests import readguard
from tests.conftest import FER2013, REPO

BESIDE = REPO.parent / "beside-the-repository.txt"  # need not exist: the guard answers first
SHARED = REPO.parent / "shared" / "datasets" / "fer2013" / "test"
# Probes that need not exist: a clone in /tmp would take them for names a test makes there.
readguard.refuse(BESIDE.name)
readguard.refuse(REPO.name + "-other")


@contextmanager
def refused(path: Path):
    with pytest.raises(readguard.OutsideRepoRead) as caught:
        yield
    assert str(path) in str(caught.value)
    refusals = readguard.take_violations()  # expected here: not this test's failure
    assert len(refusals) == 1 and str(path) in refusals[0]


def test_the_guard_is_on_for_the_whole_suite():
    assert readguard.enabled()
    assert os.environ[readguard.ENV] == str(REPO)
    assert readguard.SITE_DIR in os.environ["PYTHONPATH"].split(os.pathsep)


@pytest.mark.parametrize(
    "read",
    [
        lambda p: open(p),  # noqa: SIM115
        lambda p: io.open(p, "rb"),  # noqa: UP020, SIM115
        lambda p: os.open(p, os.O_RDONLY),
        lambda p: Path(p).read_bytes(),
        lambda p: Path(p).write_text("x"),
        lambda p: np.load(p),
        lambda p: shutil.copy(p, "/dev/null"),
        lambda p: os.fsencode(p) and open(os.fsencode(p)),  # noqa: SIM115
    ],
    ids=["open", "io.open", "os.open", "read_bytes", "write", "np.load", "shutil.copy", "bytes"],
)
def test_opening_a_file_beside_the_repository_fails_with_its_path(read):
    with refused(BESIDE):
        read(BESIDE)


@pytest.mark.parametrize(
    "listing",
    [os.listdir, os.scandir, lambda p: next(os.walk(p)), lambda p: glob.glob(f"{p}/*/*.jpg")],
    ids=["listdir", "scandir", "os.walk", "glob"],
)
def test_listing_the_datasets_beside_the_repository_fails(listing):
    with refused(SHARED):  # refused before the folder is looked at: it need not exist
        listing(SHARED)


def test_searching_beside_the_repository_fails():
    # Path.glob looks for a named folder (stat, not seen) before listing it: a wildcard lists
    with refused(REPO.parent):
        list(REPO.parent.glob("*/datasets/fer2013/test/*/*.jpg"))


def test_relative_paths_and_links_are_followed(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO / "tests")
    with refused(BESIDE):
        Path("..", "..", BESIDE.name).read_text()
    with refused(BESIDE):
        (REPO / ".." / BESIDE.name).read_text()
    link = tmp_path / "innocent.txt"
    link.symlink_to(BESIDE)
    with refused(BESIDE):
        link.read_text()
    (tmp_path / "folder").symlink_to(REPO.parent, target_is_directory=True)
    with refused(BESIDE):
        (tmp_path / "folder" / BESIDE.name).read_text()


def test_a_caught_refusal_still_fails_the_test():
    with suppress(Exception):  # code under test that swallows errors does not hide the read
        BESIDE.read_text()
    refusals = readguard.take_violations()
    assert len(refusals) == 1 and str(BESIDE) in refusals[0]


def test_switching_the_guard_off_fails_the_test_and_turns_it_back_on():
    from tests.conftest import refusals

    readguard.disable()
    assert refusals() == ["the read guard (tests/readguard.py) was switched off"]
    assert readguard.enabled()


def test_commands_given_a_path_beside_the_repository_are_refused(tmp_path):
    with refused(BESIDE):
        subprocess.run(["cat", str(BESIDE)], check=False)
    with refused(SHARED):
        subprocess.run(["ffmpeg", "-i", "x", f"--data={SHARED}"], check=False)
    with refused(REPO.parent):
        subprocess.run(["ls"], cwd=REPO.parent, check=False)


def test_python_processes_started_by_tests_have_the_guard():
    env = {**os.environ, "GUARDED_PATH": str(BESIDE)}
    child = subprocess.run([sys.executable, "-c", "import os; open(os.environ['GUARDED_PATH'])"],
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode != 0
    assert "OutsideRepoRead" in child.stderr and str(BESIDE) in child.stderr
    assert "FileNotFoundError" not in child.stderr


def test_the_repository_the_temp_folder_and_the_python_installation_stay_readable(tmp_path):
    assert (REPO / "README.md").read_bytes()
    assert (REPO / "tests" / ".." / "README.md").read_bytes()
    assert sorted(FER2013.glob("*/*/*.jpg"))
    (tmp_path / "x.txt").write_text("x")
    assert os.listdir(tmp_path) == ["x.txt"]
    assert Path(np.__file__).read_bytes()
    assert Path(os.__file__).read_bytes()
    assert readguard.outside(Path(sys.prefix) / "pyvenv.cfg") is None
    assert readguard.outside("/etc/hostname") is None
    assert readguard.outside(REPO.parent / (REPO.name + "-other") / "x") is not None  # a prefix is not a folder
