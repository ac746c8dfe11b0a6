"""Test a session's surviving mutants again, against the tests as they are now.

    python bench/mutation/retest.py SESSION.sqlite CONFIG.toml     (run by run.sh --retest)

Run with cosmic-ray's own Python, in the scratch checkout ``run.sh`` made: each survivor
is applied with ``cosmic-ray apply``, the config's test command run, the file restored.
Prints ``killed / still surviving`` and each one still surviving (module, operator, occurrence).
"""

import shlex
import subprocess
import sys
import tomllib

from cosmic_ray.work_db import WorkDB, use_db


def survivors(session: str) -> list[tuple[str, str, int, set[str]]]:
    """(module, operator, occurrence, the lines the mutant changed) of each survivor."""
    with use_db(session, WorkDB.Mode.open) as db:
        return [
            (
                str(item.mutations[0].module_path),
                item.mutations[0].operator_name,
                item.mutations[0].occurrence,
                changed_lines(result.diff or ""),
            )
            for item, result in db.completed_work_items
            if result.test_outcome is not None and result.test_outcome.name == "SURVIVED"
        ]


def changed_lines(diff: str) -> set[str]:
    return {
        line.strip()
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---")) and line[1:].strip()
    }


def main(session: str, config: str) -> None:
    with open(config, "rb") as file:
        settings = tomllib.load(file)["cosmic-ray"]
    command = shlex.split(settings["test-command"])
    still, moved = [], []
    for module, operator, occurrence, lines in survivors(session):
        subprocess.run(["cosmic-ray", "apply", module, operator, str(occurrence)], check=True)
        now = subprocess.run(["git", "diff", "--", module], capture_output=True, text=True, check=True).stdout
        if changed_lines(now) != lines:  # the module changed since: this occurrence is another mutant
            subprocess.run(["git", "checkout", "-q", "--", module], check=True)
            moved.append(f"{module} {operator} {occurrence}")
            continue
        try:
            outcome = subprocess.run(command, capture_output=True, timeout=settings["timeout"])
            killed = outcome.returncode != 0
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            subprocess.run(["git", "checkout", "-q", "--", module], check=True)
        if not killed:
            still.append(f"{module} {operator} {occurrence}")
    total = len(survivors(session)) - len(moved)
    print(f"{session}: {total - len(still)} of {total} survivors now killed, {len(still)} still surviving")
    print(f"({len(moved)} no longer found where they were: the module changed since the run)")
    print("\n".join(still))


if __name__ == "__main__":
    main(*sys.argv[1:3])
