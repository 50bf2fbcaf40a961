"""The type stubs match the module (`python -m mypy.stubtest slabcache`)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import slabcache


def test_package_is_typed():
    package = pathlib.Path(slabcache.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_native.pyi").is_file()


def test_stubtest_finds_no_mismatch(tmp_path):
    pytest.importorskip("mypy")
    env = dict(os.environ, MYPY_CACHE_DIR=str(tmp_path / "mypy_cache"))
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "slabcache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
