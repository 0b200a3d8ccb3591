"""Load deploy/airflow with Airflow's own DagBag and check the DAGs (run by `make test-airflow`).

It lives outside deploy/airflow, so that Airflow does not take it for a DAG
file, and outside tests/, which pytest imports (Airflow is not installed there).

Runs in a virtualenv of its own (Airflow's dependencies do not belong in the
project's). Exits non-zero, saying why, if a DAG file does not import or the
DAGs are not what the docs say; a broken copy must be caught too, so that
the check is known to be able to fail.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

try:  # Airflow 3.1+
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag


def load(folder: Path) -> DagBag:
    return DagBag(dag_folder=str(folder))


def main(folder: str) -> int:
    bag = load(Path(folder))
    problems = [f"{path}: {error}" for path, error in bag.import_errors.items()]
    if sorted(bag.dag_ids) != ["crash_aggregates", "crash_aggregates_digest"]:
        problems.append(f"DAGs found: {sorted(bag.dag_ids)}")
    else:
        dag = bag.dags["crash_aggregates"]
        tasks = {t.task_id: t for t in dag.tasks}
        if sorted(tasks) != ["catch_up", "check"] or tasks["check"].upstream_task_ids != {"catch_up"}:
            problems.append(f"crash_aggregates tasks: {sorted(tasks)}")
        elif str(tasks["check"].trigger_rule).rsplit(".", 1)[-1].lower() != "all_done":
            problems.append(f"check's trigger rule is {tasks['check'].trigger_rule}, not all_done")
        if not tasks["catch_up"].bash_command.startswith("crash-aggregates run --catch-up"):
            problems.append(f"catch_up runs {tasks['catch_up'].bash_command!r}")
    with tempfile.TemporaryDirectory() as broken:
        copy = Path(broken) / "crash_aggregates_dag.py"
        shutil.copy(Path(folder) / "crash_aggregates_dag.py", copy)
        copy.write_text(copy.read_text().replace('BashOperator(task_id="check"', 'BashOperator(task_idd="check"'))
        if not load(Path(broken)).import_errors:
            problems.append("a broken copy of the DAG file loaded without an error: this check cannot fail")
    for p in problems:
        print(f"check_airflow_dag: {p}", file=sys.stderr)
    if not problems:
        print(f"check_airflow_dag: {folder}: DAGs {sorted(bag.dag_ids)} load under Airflow, tasks as documented")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
