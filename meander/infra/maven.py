"""Java programs' jars, resolved from Maven Central by a pom and cached under ``.cache/``.

No distribution to unpack and no Docker: a JDK and Maven are all it takes. Each pom lists what
one program needs; the jars land in ``<home>/libs``, and a stamp written last marks a download
that finished, so one cut short is redone.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from meander.infra.process import InfraError, file_lock, find_executable

__all__ = ["cached_jars"]

_MAVEN_HINT = "Maven is needed to fetch the Kafka jars (apt-get install maven)"


def cached_jars(pom: Path, home: Path, version: str) -> Path:
    """The directory holding the jars ``pom`` resolves at ``version``, fetched unless cached."""
    libs, stamp = home / "libs", home / "complete.stamp"
    if stamp.exists():
        return libs
    mvn = find_executable("mvn", ["/usr/bin/mvn"], _MAVEN_HINT)
    with file_lock(home / ".lock"):
        if not stamp.exists():  # another process may have finished while we waited
            _download(mvn, pom, version, libs)
            # Written last: a download cut short leaves no stamp and is redone next time.
            stamp.write_text(f"{datetime.now(UTC).isoformat()}\n")
    return libs


def _download(mvn: str, pom: Path, version: str, libs: Path) -> None:
    partial = libs.with_name("libs.partial")
    for stale in (partial, libs):
        shutil.rmtree(stale, ignore_errors=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
        "-DincludeScope=runtime",
        f"-Dkafka.version={version}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise InfraError(
            f"Maven could not fetch the jars of {pom.name} at version {version} "
            f"(exit {done.returncode}); check access to Maven Central (or the mirror in "
            f"~/.m2/settings.xml) and retry:\n{output}"
        )
    partial.rename(libs)
