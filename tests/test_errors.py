"""The error model: one exit-code enum, one base exception, a library that raises and returns."""

from __future__ import annotations

import importlib
import inspect
import pickle
import re
import subprocess
import sys
from datetime import date

import pytest
from helpers import REPO, run, write_day

from crash_aggregates.aggregate import TooManyAggregates
from crash_aggregates.config import ConfigError, default_config
from crash_aggregates.engines import EngineError
from crash_aggregates.engines.spark import SparkUnavailable
from crash_aggregates.errors import CrashAggregatesError, ExitCode
from crash_aggregates.job import DateIOError, DayResult, Reporter, RunResult, run_job
from crash_aggregates.location import StorageError
from crash_aggregates.sources import CorruptInput, NoInput
from crash_aggregates.sql import QueryError
from crash_aggregates.stores import StoreUnavailable
from crash_aggregates.stores.s3_client import S3Unavailable

PACKAGE = REPO / "src" / "crash_aggregates"


def package_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(("crash_aggregates", *parts)))
    return names


#: click's own exceptions, which the CLI raises at the edge.
EDGE = {
    "crash_aggregates.cli_common.UsageError",
    "crash_aggregates.cli_common.Failed",
    "crash_aggregates.cli_common.JobFailed",
}


def test_every_exception_of_the_library_has_the_common_base():
    found = []
    for name in package_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                found.append(cls)
    outside = [f"{c.__module__}.{c.__qualname__}" for c in found if not issubclass(c, CrashAggregatesError)]
    assert sorted(outside) == sorted(EDGE)
    assert len(found) - len(EDGE) >= 10, found  # the walk finds the library's exceptions


@pytest.mark.parametrize(
    "error, code",
    [
        (ConfigError("bad config"), ExitCode.USAGE),
        (S3Unavailable("no s3fs"), ExitCode.USAGE),
        (StoreUnavailable("no client library"), ExitCode.USAGE),
        (SparkUnavailable("no java"), ExitCode.USAGE),
        (QueryError("unknown column"), ExitCode.USAGE),
        (QueryError("time limit", ExitCode.FAILED), ExitCode.FAILED),
        (NoInput("no input folder"), ExitCode.NO_INPUT),
        (CorruptInput("a.gz", 12, "gzip stream truncated"), ExitCode.FAILED),
        (StorageError("s3://bucket/x", "access denied", "list"), ExitCode.FAILED),
        (EngineError("the Spark job failed"), ExitCode.FAILED),
        (DateIOError("cannot read input: gone"), ExitCode.FAILED),
        (TooManyAggregates(10, 11, [("os", 2), ("build_id", 11)], 0.5), ExitCode.FAILED),
    ],
)
def test_exit_code_and_message_survive_a_process_boundary(error, code):
    assert error.exit_code == code
    copy = pickle.loads(pickle.dumps(error))  # errors of worker processes reach the parent pickled
    assert (type(copy), str(copy), copy.exit_code) == (type(error), str(error), code)
    assert "\n" not in str(error)


def test_storage_errors_are_still_os_errors():
    error = StorageError("s3://bucket/x", "no such bucket")
    assert isinstance(error, OSError) and str(error) == "cannot use s3://bucket/x: no such bucket"


EXIT_CODE_DEFINITIONS = [
    re.compile(r"\bEXIT_\w+(?:,\s*EXIT_\w+)*\s*=\s*-?\d"),  # a constant of its own
    re.compile(r"(?:sys\.)?exit\(\s*-?\d"),  # a literal status
    re.compile(r"exit_code\s*=\s*-?\d"),
]


def test_exit_codes_are_defined_once():
    offenders = [
        f"{path.relative_to(REPO)}: {m.group(0).strip()}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "errors.py" or path.parent != PACKAGE
        for pattern in EXIT_CODE_DEFINITIONS
        for m in pattern.finditer(path.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "code, text",
    [
        ("EXIT_USAGE = 2", True),
        ("EXIT_OK, EXIT_FAILED = 0, 1", True),
        ('EXIT_CODES_HELP = """', False),
        ("    sys.exit(1)", True),
        ("    exit_code = 2", True),
        ("sys.exit(result.exit_code)", False),
        ("exit_code = ExitCode.USAGE", False),
    ],
)
def test_the_definition_check_can_fail(code, text):
    assert any(p.search(code) for p in EXIT_CODE_DEFINITIONS) is text


def day(status: str) -> DayResult:
    return DayResult(date(2016, 3, 5), status)


@pytest.mark.parametrize(
    "statuses, code",
    [
        ([], ExitCode.OK),
        (["published", "published"], ExitCode.OK),
        (["published", "no input"], ExitCode.NO_INPUT),
        (["no input", "failed"], ExitCode.FAILED),
        (["published", "stopped"], ExitCode.FAILED),
    ],
)
def test_the_exit_code_of_a_run(statuses, code):
    assert RunResult([], [day(s) for s in statuses], 0.0).exit_code == code


def test_the_library_imports_no_click():
    code = "import sys, crash_aggregates.job; assert 'click' not in sys.modules and 'rich' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


class Recorder(Reporter):
    def __init__(self):
        self.events = []

    def day_done(self, result):
        self.events.append(("day_done", result.day.isoformat(), result.status))

    def warning(self, message):
        self.events.append(("warning", message))


def test_run_job_returns_results_and_prints_nothing(tmp_path, capfd):
    ping = {
        "type": "main",
        "meta": {"submissionDate": "20160305", "docType": "main"},
        "creationDate": "2016-03-04T12:00:00Z",
        "environment": {"build": {"buildId": "20160301000000"}},
        "payload": {"info": {"subsessionLength": 3600, "subsessionStartDate": "2016-03-04"}},
    }
    write_day(tmp_path / "in", "2016-03-05", [ping, ping, "{not json"])
    bad = write_day(tmp_path / "in", "2016-03-07", [ping] * 100, "a.ndjson.gz", compression="gzip")
    bad.write_bytes(bad.read_bytes()[:-20])
    dates = [date(2016, 3, 5), date(2016, 3, 6), date(2016, 3, 7)]
    recorder = Recorder()

    result = run_job(default_config(), str(tmp_path / "in"), str(tmp_path / "out"), dates, workers=1, reporter=recorder)

    assert capfd.readouterr() == ("", "")
    assert [(r.day, r.status) for r in result.days] == list(
        zip(dates, ["published", "no input", "failed"], strict=True)
    )
    published, no_input, failed = result.days
    assert published.report["main_pings_processed"] == 2 and published.report["main_pings_ignored"] == 1
    assert str(published.location) == str(tmp_path / "out" / "submission_date=2016-03-05")
    assert isinstance(no_input.error, NoInput) and no_input.error.exit_code == ExitCode.NO_INPUT
    assert isinstance(failed.error, CorruptInput) and "a.ndjson.gz" in str(failed.error)
    assert result.exit_code == ExitCode.FAILED and (result.failed, result.not_run) == (1, 0)
    assert recorder.events == [
        ("day_done", d.isoformat(), s) for d, s in zip(dates, ["published", "no input", "failed"], strict=True)
    ]


def test_an_io_error_fails_the_date_in_one_line(tmp_path):
    write_day(tmp_path / "in", "2016-03-05", ["{}"])
    (tmp_path / "out").write_text("a file where the output folder should be")
    result = run(
        "run", "--input", tmp_path / "in", "--output", tmp_path / "out",
        "--min-submission-date", "2016-03-05", "--max-submission-date", "2016-03-05",
    )  # fmt: skip
    assert result.exit_code == ExitCode.FAILED
    # The run's first step, taking the output's lock (lock.py), meets it.
    assert result.stderr == f"error: cannot take the lock of {tmp_path / 'out'}: File exists\n"
    assert result.stdout == ""
