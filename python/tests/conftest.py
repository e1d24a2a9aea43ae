import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def programs():
    """The Rust programs (`producer`, `consumer`): $RINGFILE_BIN if set, else built here
    (a debug build, which the workspace's own test run has already made)."""
    bin_dir = os.environ.get("RINGFILE_BIN")
    if bin_dir is None:
        subprocess.run(
            ["cargo", "build", "--locked", "-p", "ringfile-producer", "-p", "ringfile-consumer"],
            cwd=ROOT,
            check=True,
        )
        bin_dir = ROOT / "target" / "debug"
    bin_dir = pathlib.Path(bin_dir)
    return {name: str(bin_dir / name) for name in ("producer", "consumer")}


@pytest.fixture
def ring_path(tmp_path):
    return str(tmp_path / "ring")
