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


def survivors(session: str) -> list[tuple[str, str, int]]:
    with use_db(session, WorkDB.Mode.open) as db:
        return [
            (str(item.mutations[0].module_path), item.mutations[0].operator_name, item.mutations[0].occurrence)
            for item, result in db.completed_work_items
            if result.test_outcome is not None and result.test_outcome.name == "SURVIVED"
        ]


def main(session: str, config: str) -> None:
    with open(config, "rb") as file:
        settings = tomllib.load(file)["cosmic-ray"]
    command = shlex.split(settings["test-command"])
    still = []
    for module, operator, occurrence in survivors(session):
        subprocess.run(["cosmic-ray", "apply", module, operator, str(occurrence)], check=True)
        try:
            outcome = subprocess.run(command, capture_output=True, timeout=settings["timeout"])
            killed = outcome.returncode != 0
        except subprocess.TimeoutExpired:
            killed = True
        finally:
            subprocess.run(["git", "checkout", "-q", "--", module], check=True)
        if not killed:
            still.append(f"{module} {operator} {occurrence}")
    total = len(survivors(session))
    print(f"{session}: {total - len(still)} of {total} survivors now killed, {len(still)} still surviving")
    print("\n".join(still))


if __name__ == "__main__":
    main(*sys.argv[1:3])
