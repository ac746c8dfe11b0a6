"""``make cluster`` from the suite. Run as root, its workers run as ``CLUSTER_USER``, who must be
able to run their Python: pyenv's lives in root's home (0700), so the fixture copies that
interpreter and its standard library somewhere readable and makes a virtualenv of it that
imports this one's packages (``make cluster BIN=...``)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def searchable_by_others(path: Path) -> bool:
    return all(folder.stat().st_mode & 0o001 for folder in [path, *path.parents])


@pytest.fixture(scope="session")
def cluster_python() -> Iterator[dict]:
    """``{"args": [...make arguments], "env": {...}}`` for a ``make cluster`` whose user can run its Python."""
    from django.conf import settings

    # The workers may not read the checkout's debug key (0600, root's): they get the suite's.
    env = {"SECRET_KEY": settings.SECRET_KEY}
    base = Path(sys.base_prefix).resolve()
    if os.geteuid() != 0 or searchable_by_others(base / "lib"):
        yield {"args": [], "env": env}
        return
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    work = Path(tempfile.mkdtemp(prefix="cluster-python-"))
    work.chmod(0o755)
    prefix = work / "prefix"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy2(Path(sys._base_executable).resolve(), prefix / "bin" / version)
    (prefix / "lib").mkdir()
    for library in (base / "lib").glob("libpython*.so*"):
        shutil.copy2(library, prefix / "lib" / library.name, follow_symlinks=False)
    shutil.copytree(
        base / "lib" / version,
        prefix / "lib" / version,
        symlinks=True,
        ignore=shutil.ignore_patterns("site-packages", "test", "idlelib", "tkinter", "turtledemo"),
    )
    env["LD_LIBRARY_PATH"] = str(prefix / "lib")  # the interpreter's RUNPATH names root's home
    venv = work / "venv"
    subprocess.run(
        [prefix / "bin" / version, "-m", "venv", "--without-pip", venv],
        env={**os.environ, **env},
        check=True,
        timeout=60,
    )
    packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    (venv / "lib" / version / "site-packages" / "suite.pth").write_text(
        f"import site; site.addsitedir({str(packages)!r})\n"
    )
    try:
        yield {"args": [f"BIN={venv / 'bin'}"], "env": env}
    finally:
        shutil.rmtree(work, ignore_errors=True)
