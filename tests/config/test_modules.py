"""docs/architecture.md: modules with one job, none over 300 lines."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "bookings", "partners", "messaging", "dashboard")  # the product (tests/config/test_layers.py)
MAX_LINES = 300
# Longer on purpose, each with its reason in docs/architecture.md.
LONGER: set[str] = set()


def oversized(root: Path) -> dict[str, int]:
    """Each product module (migrations aside) over ``MAX_LINES`` lines: its path and length."""
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES:
                found[path.relative_to(root).as_posix()] = lines
    return found


def test_no_product_module_is_over_300_lines_but_the_named_ones():
    found = oversized(ROOT)
    assert {path: lines for path, lines in found.items() if path not in LONGER} == {}, "split it along a seam"
    assert set(LONGER) <= set(found), "a named exception is short now: take it off LONGER and the docs"


def test_the_check_sees_a_long_module(tmp_path):
    (tmp_path / "config" / "realtime").mkdir(parents=True)
    (tmp_path / "config" / "realtime" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "config" / "short.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "bookings" / "migrations").mkdir(parents=True)
    (tmp_path / "bookings" / "migrations" / "0001_initial.py").write_text("x = 1\n" * 1000)
    assert oversized(tmp_path) == {"config/realtime/long.py": MAX_LINES + 1}
