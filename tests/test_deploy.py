"""deploy/: every scheduler example runs commands the CLI accepts, and the cron line keeps a dataset current.

Each example's command lines are taken from the file as it is shipped and
parsed by the real click commands (an option that does not exist fails).
The crontab line and the systemd unit's commands are then run through
/bin/sh, as cron and systemd would, on a real dataset with a missing day and
a real SMTP server: the dates are published, the check fires, one email
arrives, and the next run sends nothing. The Airflow DAG is loaded by
Airflow itself in ``make test-airflow`` (its own virtualenv: Airflow's
dependencies do not belong in the project's).
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from helpers import REPO, write_day
from mailhook import SmtpServer
from test_catchup import day, pings

from crash_aggregates.cli import cli

DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent


def parse(command: str) -> click.Context:
    """Parse one ``crash-aggregates ...`` command line with the real CLI (raises on unknown options)."""
    words = shlex.split(command)
    assert Path(words[0]).name == "crash-aggregates", command
    name, args = words[1], words[2:]
    assert name in cli.commands, f"unknown command {name!r} in {command!r}"
    return cli.commands[name].make_context(name, args)


def commands_in(shell: str) -> list[str]:
    """The crash-aggregates commands of a shell line (``a; b``, ``a && b``, ``a || b``), without redirections."""
    parts = [p.strip() for chunk in shell.split(";") for q in chunk.split("&&") for p in q.split("||")]
    parts = [re.sub(r"\s*\d*>>?\s*(&\d|\"[^\"]*\"|\S+)", "", p) for p in parts]
    return [p for p in parts if p and "crash-aggregates" in p.split()[0]]


# -- the files parse, and say what they should ---------------------------------------------


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    # Repeated keys (two ExecStart=) are legal in systemd units: keep the last, read them all by hand below.
    parser.read_string(path.read_text())
    return parser


def exec_starts(path: Path) -> list[str]:
    return [line.split("=", 1)[1] for line in path.read_text().splitlines() if line.startswith("ExecStart=")]


def systemd_commands() -> list[str]:
    """The shell commands of the unit's ExecStart= lines, as systemd runs them ("-" and $$ resolved)."""
    found = []
    for line in exec_starts(DEPLOY / "systemd" / "crash-aggregates.service"):
        line = line.removeprefix("-").replace("$$", "$")
        words = shlex.split(line)
        found.append(words[2] if words[:2] == ["/bin/sh", "-c"] else line)
    return found


def test_systemd_unit_and_timer():
    service = unit(DEPLOY / "systemd" / "crash-aggregates.service")
    assert service["Service"]["Type"] == "oneshot"
    commands = [c for line in systemd_commands() for c in commands_in(line)]
    assert [shlex.split(c)[1:3] for c in commands] == [["run", "--catch-up"], ["check", "--config"]]
    for command in commands:
        parse(command)
    timer = unit(DEPLOY / "systemd" / "crash-aggregates.timer")
    assert timer["Timer"]["OnCalendar"].endswith("UTC") and timer["Timer"]["Persistent"] == "true"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze (Debian's systemd) not here")
def test_systemd_analyze_verifies_the_units(tmp_path):
    for name in ("crash-aggregates.service", "crash-aggregates.timer"):
        text = (
            (DEPLOY / "systemd" / name)
            .read_text()
            .replace("/usr/local/bin/crash-aggregates", str(BIN / "crash-aggregates"))
        )
        # No such user here: systemd-analyze would warn about it, not about the unit.
        text = "\n".join(line for line in text.splitlines() if not line.startswith(("User=", "Group=")))
        (tmp_path / name).write_text(text)
    files = [str(tmp_path / "crash-aggregates.service"), str(tmp_path / "crash-aggregates.timer")]
    result = subprocess.run(["systemd-analyze", "verify", *files], capture_output=True, text=True)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "crash-aggregates" in line]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


def crontab_lines() -> list[tuple[str, str]]:
    """``(schedule, command)`` of each job line of the crontab."""
    jobs = []
    for line in (DEPLOY / "cron" / "crontab").read_text().splitlines():
        if not line.strip() or line.startswith("#") or "=" in line.split()[0]:
            continue
        fields = line.split(None, 5)
        jobs.append((" ".join(fields[:5]), fields[5]))
    return jobs


def crontab_environment() -> dict[str, str]:
    env = {}
    for line in (DEPLOY / "cron" / "crontab").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line.split()[0]:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def test_crontab_lines():
    jobs = crontab_lines()
    assert [j[0] for j in jobs] == ["15 * * * *", "0 7 * * 1"]
    hourly = commands_in(jobs[0][1])
    assert [shlex.split(c)[1] for c in hourly] == ["run", "check"] and "--catch-up" in hourly[0]
    for _, command in jobs:
        for c in commands_in(command):
            parse(c)
    assert crontab_environment()["CRON_TZ"] == "UTC"


def test_kubernetes_cronjobs():
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjob.yaml").read_text()))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ConfigMap", "PersistentVolumeClaim", "CronJob", "CronJob"]
    config = docs[0]["data"]["config.toml"]
    import tomllib

    from crash_aggregates.config import parse_config

    assert parse_config(tomllib.loads(config)).watch.alerts[0].name == "nightly main crash regression"
    for job in docs[2:]:
        assert job["apiVersion"] == "batch/v1" and job["spec"]["concurrencyPolicy"] == "Forbid"
        assert job["spec"]["timeZone"] == "Etc/UTC"
        [container] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        command = container["command"] + container.get("args", [])
        line = command[2] if command[:2] == ["/bin/sh", "-c"] else shlex.join(command)
        for c in commands_in(line):
            parse(c)
        mounts = {m["name"] for m in container["volumeMounts"]}
        assert mounts == {"config", "state"}
    hourly = docs[2]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert [shlex.split(c)[1] for c in commands_in(hourly)] == ["run", "check"]


def airflow_commands() -> dict[str, str]:
    """The DAG file's command constants, read without importing Airflow."""
    tree = ast.parse((DEPLOY / "airflow" / "crash_aggregates_dag.py").read_text())
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name == "CONFIG":
                values[name] = ast.literal_eval(node.value)
            elif isinstance(node.value, ast.JoinedStr):
                values[name] = "".join(
                    part.value if isinstance(part, ast.Constant) else values[part.value.id]
                    for part in node.value.values
                )
    return values


def test_airflow_dag_commands():
    commands = airflow_commands()
    assert set(commands) == {"CONFIG", "CATCH_UP", "CHECK", "DIGEST"}
    for name in ("CATCH_UP", "CHECK", "DIGEST"):
        for c in commands_in(commands[name]):
            parse(c)
    assert commands["CATCH_UP"].split()[1:3] == ["run", "--catch-up"]


# -- the cron line and the systemd unit, run --------------------------------------------------


@pytest.fixture
def site(tmp_path):
    """Input for the last days but the day before yesterday, a config with [data], [state] and email."""
    inp = tmp_path / "pings"
    for n in (4, 3, 1):
        write_day(inp, day(n), pings(40, day(n)))
    return tmp_path


def config_for(site: Path, smtp: SmtpServer) -> Path:
    path = site / "config.toml"
    path.write_text(
        f"""
[data]
input = "{site / "pings"}"
output = "{site / "aggregates"}"
[state]
path = "{site / "state.sqlite3"}"
[notify.email]
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
tls = "none"
sender = "crash-aggregates@example.org"
to = ["stability@example.org"]
"""
    )
    return path


def run_shell(line: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_the_cron_line_keeps_the_dataset_current_and_tells_once(site):
    env = {**os.environ, **crontab_environment(), "HOME": str(site / "home")}
    (site / "home").mkdir()
    log = site / "home" / "crash-aggregates.log"

    def logged() -> str:
        """What the commands printed since the last look (the log file)."""
        text = log.read_text()
        log.write_text("")
        return text

    with SmtpServer() as smtp:
        env["CRASH_AGGREGATES_CONFIG"] = str(config_for(site, smtp))
        env["PATH"] = f"{BIN}:{env['PATH']}"
        [(_, hourly), _] = crontab_lines()
        first = run_shell(hourly, env)
        # Cron mails what a job prints: nothing, as long as the commands can work.
        assert (first.stdout, first.stderr) == ("", "")
        published = sorted(p.name for p in (site / "aggregates").glob("submission_date=*"))
        first_log = logged()
        assert published == [f"submission_date={day(n)}" for n in (4, 3, 1)], first_log
        assert f"submission date {day(2)} is not published" in first_log
        [mail] = smtp.received
        assert mail.message["Subject"] == f"[crash-aggregates] FIRING: submission date {day(2)} is not published"

        second = run_shell(hourly, env)  # an hour later, nothing new: nothing runs, nothing is sent
        assert (second.stdout, second.stderr) == ("", "")
        assert "0 to run, 3 up to date" in logged() and len(smtp.received) == 1

        write_day(site / "pings", day(2), pings(40, day(2)))  # the missing day arrives late
        third = run_shell(hourly, env)
        assert (third.stdout, third.stderr) == ("", "")
        assert f"{day(2)}: to run: not published" in logged()
        assert len(smtp.received) == 2
        assert smtp.received[1].message["Subject"] == f"[crash-aggregates] RESOLVED: {day(2)} is published"

        # A check that cannot work at all (here a broken config) is what cron mails.
        (site / "config.toml").write_text("[notify.email]\nsmtp_port = 'x'\n")
        broken = run_shell(hourly, env)
        assert broken.stdout == f"crash-aggregates check failed: see {site / 'home'}/crash-aggregates.log\n"
        assert "error" in logged().lower() and len(smtp.received) == 2


@pytest.mark.slow
def test_the_systemd_unit_commands_run(site):
    with SmtpServer() as smtp:
        config = config_for(site, smtp)
        env = {**os.environ, "XDG_DATA_HOME": str(site / "xdg")}
        statuses = []
        for line in systemd_commands():
            line = line.replace("/usr/local/bin/crash-aggregates", str(BIN / "crash-aggregates"))
            result = run_shell(line.replace("/etc/crash-aggregates/config.toml", str(config)), env)
            statuses.append(result.returncode)
        # The check fires (the day before yesterday is missing) and the unit still succeeds.
        assert statuses == [0, 0] and len(smtp.received) == 1


def test_the_state_default_under_systemd_is_the_state_directory(tmp_path, monkeypatch):
    from crash_aggregates.state import resolve_path

    monkeypatch.setenv("XDG_DATA_HOME", "/var/lib")  # as the unit sets it
    assert resolve_path(None, None) == Path("/var/lib/crash-aggregates/state.sqlite3")


@pytest.mark.slow
def test_from_cron_the_demo_stays_current_and_the_inbox_gets_one_email_per_problem(tmp_path):
    """Issue 13's "done when", day by day on the demo's pings (``generate``), each day arriving after midnight.

    The planted nightly regression (``synth.regression_build_id``) is in the
    data from the first day; 2016-03-09 arrives a day late. Expected, by
    construction: one email for the regression, one for the missing day, one
    when it is published; and nothing on the days when nothing changed.
    """
    from datetime import date, timedelta

    from crash_aggregates import synth

    first, last, late = date(2016, 3, 6), date(2016, 3, 11), date(2016, 3, 9)
    everything = tmp_path / "generated"
    generated = subprocess.run(
        [str(BIN / "crash-aggregates"), "generate", "--output", str(everything), "--pings-per-day", "10000",
         "--min-submission-date", str(first), "--max-submission-date", str(last), "--seed", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    regression = synth.regression_build_id([first + timedelta(days=i) for i in range((last - first).days + 1)])
    with SmtpServer() as smtp:
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[data]
input = "{tmp_path / "pings"}"
output = "{tmp_path / "aggregates"}"
[state]
path = "{tmp_path / "state.sqlite3"}"
[dashboard]
url = "https://crash-dashboard.example.org"
[notify.email]
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
tls = "none"
sender = "crash-aggregates@example.org"
to = ["stability@example.org"]

[[alerts]]
name = "nightly main crash regression"
stat = "main_crashes"
where = {{ channel = "nightly" }}
by = "build_id"
relative = 1.25
baseline = "previous 3 builds"
alpha = 0.01
min_usage_hours = 300
"""
        )
        env = {**os.environ, "CRASH_AGGREGATES_CONFIG": str(config), "PATH": f"{BIN}:{os.environ['PATH']}"}
        mail_by_day = {}
        today = first + timedelta(days=1)
        while today <= last + timedelta(days=1):
            arriving = [today - timedelta(days=1)] if today - timedelta(days=1) != late else []
            arriving += [late] if today == late + timedelta(days=2) else []
            for d in arriving:
                if d <= last:
                    shutil.copytree(everything / f"submission_date={d}", tmp_path / "pings" / f"submission_date={d}")
            before = len(smtp.received)
            # The crontab's line, with the demo's dates: --since its first, --as-of the simulated day.
            line = f"crash-aggregates run --catch-up --since {first}; crash-aggregates check --as-of {today}"
            result = run_shell(line, env)
            assert result.returncode in (0, 1), result.stderr
            mail_by_day[str(today)] = [m.message["Subject"] for m in smtp.received[before:]]
            today += timedelta(days=1)
        published = sorted(p.name for p in (tmp_path / "aggregates").glob("submission_date=*"))
        assert published == [f"submission_date={first + timedelta(days=i)}" for i in range(6)]

    subjects = [s for day_subjects in mail_by_day.values() for s in day_subjects]
    assert len(subjects) == 3, mail_by_day
    assert subjects[0].startswith(
        f"[crash-aggregates] FIRING: nightly main crash regression [build_id={regression}]: main_crashes "
    )
    assert mail_by_day["2016-03-10"] == ["[crash-aggregates] FIRING: submission date 2016-03-09 is not published"]
    assert mail_by_day["2016-03-11"] == ["[crash-aggregates] RESOLVED: 2016-03-09 is published"]
    # The regression is told as soon as a day of data shows it (the first or second day), and never again.
    assert subjects[0] in mail_by_day["2016-03-07"] + mail_by_day["2016-03-08"]
