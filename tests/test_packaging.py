"""The wheel installs one import name, ``meander``: the top-level producers/, consumers/,
services/ and models/ folders go in through the links inside meander/, with the files they
need besides Python (the dashboard's static files, the Kafka pom)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".cache",
    "__pycache__",
    ".*_cache",
    "artifacts",
    "build",
    "dist",
    "*.egg-info",
)


def test_the_wheel_holds_only_the_meander_package_with_its_data(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_SOURCE)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path, source],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("meander-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        top_level = archive.read("meander-0.1.0.dist-info/top_level.txt").split()

    assert top_level == [b"meander"]
    assert {name.split("/")[0] for name in names} == {"meander", "meander-0.1.0.dist-info"}
    for folder in ("producers", "consumers", "services", "models"):
        assert f"meander/{folder}/__init__.py" in names
    assert "meander/consumers/learner/learner.py" in names
    assert "meander/services/routes/predict.py" in names
    assert "meander/services/static/dashboard.html" in names
    assert "meander/infra/kafka-pom.xml" in names
    assert "meander/infra/kafka-tools-pom.xml" in names
