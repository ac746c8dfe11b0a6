"""What a benchmark needs before it starts: the project's virtualenv and the official client.

``python bench/run.py`` on a fresh clone sets both up through the Makefile's own targets (the
rules ``make test`` uses), then runs again under the virtualenv's Python, so any Python 3.11
can start it.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"


def ensure(*, client: bool = True) -> None:
    """Install what is missing (``make`` does nothing when it is there), then run under the virtualenv."""
    targets = [".venv/.installed", *(["tests/js/node_modules"] if client else [])]
    subprocess.run(["make", "-s", "-C", str(ROOT), *targets], check=True)
    if client and not (ROOT / "tests" / "js" / "node_modules" / "socket.io-client").is_dir():
        raise SystemExit("the load generator needs Node.js 20 and npm (the official socket.io-client)")
    if Path(sys.prefix).resolve() != VENV.resolve():
        python = str(VENV / "bin" / "python")
        os.execv(python, [python, *sys.argv])
