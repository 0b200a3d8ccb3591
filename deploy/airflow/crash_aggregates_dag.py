"""crash-aggregates in Airflow: every hour, catch up, then check; every Monday, the digest.

Copy this file into the DAGs folder of an Airflow whose workers have
crash-aggregates installed (``pip install 'crash-aggregates[s3,report]'``) and
the config at CONFIG. The tasks run the same two commands as the cron line
and the systemd unit (see docs/watchdog.md, "Scheduling"). Airflow 2.7+ and 3.
"""

from __future__ import annotations

from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

CONFIG = "/etc/crash-aggregates/config.toml"
CATCH_UP = f"crash-aggregates run --catch-up --config {CONFIG}"
# Exit 1 means "something fires", and the notifications went out: not a failed task.
CHECK = f"crash-aggregates check --config {CONFIG}; test $? -le 1"
DIGEST = f"crash-aggregates report --email --days 7 --config {CONFIG}"

with DAG(
    dag_id="crash_aggregates",
    description="Publish the dates that need it, then check the data and the crash rates",
    schedule="15 * * * *",
    start_date=datetime(2024, 1, 1),
    catchup=False,  # the command catches up by itself
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["crash-aggregates"],
) as dag:
    catch_up = BashOperator(task_id="catch_up", bash_command=CATCH_UP)
    # Runs even when the catch-up failed, so that an unpublished day is reported.
    check = BashOperator(task_id="check", bash_command=CHECK, trigger_rule="all_done")
    catch_up >> check

with DAG(
    dag_id="crash_aggregates_digest",
    description="The weekly crash-rate digest by email",
    schedule="0 7 * * 1",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["crash-aggregates"],
) as digest_dag:
    BashOperator(task_id="digest", bash_command=DIGEST)
