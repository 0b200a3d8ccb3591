"""The Spark engine on local[2]: the embedded engine's partitions, spark-submit, Spark SQL, errors.

One SparkSession serves the whole module. Tests that need Java skip where it
is absent (or older than 17), and only then; with CRASH_AGGREGATES_REQUIRE_SPARK=1
(set by .ci/run) a missing Java is a failure too, so CI cannot pass without them.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import random
import re
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import (
    SHARED,
    check_sidecar,
    legacy_layout,
    part_file_totals,
    publish_with_job,
    read_partition,
    read_report,
    run,
    run_process,
    run_snippet,
    same_totals,
    snippets,
    sql_totals,
    stat_names,
    write_day,
)

from crash_aggregates.engines import EngineError

DAYS = ["2016-03-05", "2016-03-06", "2016-03-07"]
REQUIRE_SPARK = os.environ.get("CRASH_AGGREGATES_REQUIRE_SPARK") == "1"
REPORT_COUNTERS = (
    "main_pings_processed",
    "main_pings_ignored",
    "crash_pings_processed",
    "crash_pings_ignored",
    "ignored_by_reason",
    "ignored_by_doc_type",
    "aggregates",
    "input_files",
    "input_bytes",
    "corrupt_files",
    "submission_date",
    "dimensions",
    "stats",
)


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    """A local[2] session with the embedded (Derby) Hive catalog, all of it in a temporary folder."""
    from crash_aggregates.engines.spark import java_problem

    problem = java_problem()
    if problem:
        if REQUIRE_SPARK:
            pytest.fail(f"CRASH_AGGREGATES_REQUIRE_SPARK=1 but Spark cannot run: no usable Java: {problem}")
        pytest.skip(f"no usable Java (17+) for Spark: {problem}")
    from pyspark.sql import SparkSession  # the spark extra is part of the test install: never skipped

    home = tmp_path_factory.mktemp("spark-home")
    saved = os.environ.get("PYSPARK_PYTHON")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("crash-aggregates-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.warehouse.dir", str(home / "warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={home}")
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true",
        )
        .enableHiveSupport()
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    from crash_aggregates.engines import spark as engine

    engine.stop()  # forgets this session (the engine did not start it, so does not stop it)
    session.stop()
    if saved is None:
        os.environ.pop("PYSPARK_PYTHON", None)
    else:
        os.environ["PYSPARK_PYTHON"] = saved


# -- the corpus: every kind of bad input, three days ----------------------------------


def ping(rng: random.Random, day: str, doc_type: str = "main", **overrides) -> dict:
    """A plausible main or crash ping submitted on ``day``, with dimensions drawn from rng."""
    d = date.fromisoformat(day)
    activity = date.fromordinal(d.toordinal() - rng.choice([-3, 0, 0, 1, 2, 6, 7, 8, 30]))  # some beyond D-7
    histograms = {
        "SUBPROCESS_CRASHES_WITH_DUMP": {
            key: {"values": {"0": rng.choice([0, 0, 1, 2, 5])}} for key in ("content", "plugin", "gmplugin", "gpu")
        },
        "SUBPROCESS_KILL_HARD": {"ShutDownKill": {"values": {"0": rng.choice([0, 1, 3])}}},
    }
    if doc_type == "crash":
        payload = {
            "crashDate": activity.isoformat(),
            "processType": rng.choice(["main", None]),
            "keyedHistograms": histograms,
        }
    else:
        payload = {
            "info": {
                "subsessionLength": rng.choice([0, 60, 3600, 7261, 86400 * 2, -5, 1.5]),
                "subsessionStartDate": f"{activity.isoformat()}T00:00:00.0+01:00",
            },
            "keyedHistograms": histograms,
        }
    doc = {
        "type": doc_type,
        "creationDate": f"{activity.isoformat()}T12:00:00.000Z",
        "meta": {
            "submissionDate": day.replace("-", ""),
            "docType": doc_type,
            "geoCountry": rng.choice(["US", "DE", "FR", "??", ""]),
        },
        "application": {
            "name": rng.choice(["Firefox", "Fennec"]),
            "channel": rng.choice(["release", "beta", "nightly"]),
        },
        "environment": {
            "build": {
                "version": rng.choice(["45.0", "46.0a2"]),
                "buildId": rng.choice(["20160301000000", "20160215123456"]),
                "architecture": rng.choice(["x86", "x86-64"]),
            },
            "system": {
                "os": {"name": rng.choice(["Windows_NT", "Linux", "Darwin"]), "version": rng.choice(["6.1", 10, 10.5])}
            },
            "settings": {
                "e10sEnabled": rng.choice([True, False, None]),
                "e10sCohort": rng.choice(["control", "test", {}]),
            },
            "addons": {
                "activeExperiment": rng.choice([{}, {"id": "e10s@experiments.mozilla.org", "branch": "control"}])
            },
        },
        "payload": payload,
    }
    for path, value in overrides.items():
        node = doc
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return doc


def bad_lines(rng: random.Random, day: str) -> list:
    """One or more of every kind of line the rules must ignore (and count)."""
    other_day = "20160101"
    return [
        "",
        "   ",  # blank: skipped, not counted
        "{not json",
        "[1, 2]",
        "42",
        b'{"bad utf8": "\xff"}',
        '{"n": NaN}',
        "[" * 5000 + "]" * 5000,
        ping(rng, day, "event"),
        ping(rng, day, "main", **{"meta.docType": None}),  # fallback to type
        ping(rng, day, "crash", **{"payload.processType": "content"}),
        ping(rng, day, "crash", **{"payload.processType": "gpu"}),
        ping(rng, day, "main", **{"meta.submissionDate": other_day}),
        ping(rng, day, "crash", **{"meta.submissionDate": day}),  # dashes: invalid
        ping(rng, day, "main", **{"meta.submissionDate": 20160305}),
        ping(rng, day, "main", **{"payload.info.subsessionStartDate": "garbage", "creationDate": None}),
        ping(rng, day, "crash", **{"payload.crashDate": "2016-02-30", "creationDate": "also bad"}),
        ping(rng, day, "crash", **{"payload.crashDate": None}),  # falls back to creationDate
        ping(rng, day, "main", **{"environment.build.buildId": "2016030100000"}),
        ping(rng, day, "main", **{"environment.build.buildId": 20160301000000}),
        ping(rng, day, "crash", **{"environment.build.buildId": "２０１６０３０１０００００"}),
        ping(rng, day, "main", **{"payload.info.subsessionLength": None}),
        ping(rng, day, "main", **{"payload.info.subsessionLength": "3600"}),
        ping(rng, day, "main", **{"payload.info.subsessionLength": True}),
        '{{"type": "main", "meta": {{"submissionDate": "{}", "docType": "main"}}, "creationDate": "{}T00:00:00Z", '
        '"environment": {{"build": {{"buildId": "20160301000000"}}}}, '
        '"payload": {{"info": {{"subsessionLength": 1e400}}}}}}'.format(day.replace("-", ""), day),
        ping(rng, day, "main", payload=3),
        ping(rng, day, "main", **{"payload.keyedHistograms.SUBPROCESS_CRASHES_WITH_DUMP.content.values.0": -3}),
        ping(rng, day, "main", **{"payload.keyedHistograms.SUBPROCESS_CRASHES_WITH_DUMP.plugin.values.0": "7"}),
        ping(rng, day, "main", **{"payload.keyedHistograms.SUBPROCESS_KILL_HARD.ShutDownKill.values.0": True}),
        ping(rng, day, "main", **{"application.channel": "", "payload.info.subsessionLength": 3600}),
        ping(rng, day, "main", **{"application.channel": None, "payload.info.subsessionLength": 1800}),
    ]


#: The engines run with this limit (``--max-line-size``): the corpus has lines at
#: it and over it, several times longer than the byte ranges (``SPLIT_BYTES``).
MAX_LINE = ("--max-line-size", "32KiB")
MAX_LINE_BYTES = 32 << 10


def padded(doc: dict, length: int) -> bytes:
    """``doc`` as JSON of exactly ``length`` bytes (a "pad" field makes up the difference)."""
    text = json.dumps({**doc, "pad": ""}).encode()
    return json.dumps({**doc, "pad": "p" * (length - len(text))}).encode()


def long_lines(rng: random.Random, day: str) -> list:
    """Lines at the limit (processed) and over it (oversized: ignored, counted as main pings)."""
    return [
        padded(ping(rng, day, "main"), MAX_LINE_BYTES),
        padded(ping(rng, day, "crash"), MAX_LINE_BYTES + 1),
        padded(ping(rng, day, "main"), 3 * MAX_LINE_BYTES),
        b"{not json " + b"x" * MAX_LINE_BYTES,
    ]


def lines_for(day: str, n: int, seed: int) -> list:
    rng = random.Random(seed)
    lines = [ping(rng, day, "crash" if rng.random() < 0.2 else "main") for _ in range(n)]
    bad = bad_lines(rng, day) + long_lines(rng, day)
    for line in bad:  # scattered, so that byte ranges cut through all kinds
        lines.insert(rng.randrange(len(lines) + 1), line)
    return lines


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three days: plain files cut into byte ranges, gzip (two members), zstd, an empty file."""
    root = tmp_path_factory.mktemp("spark-corpus") / "in"
    a, b, c = DAYS
    write_day(root, a, lines_for(a, 900, 1), "big.ndjson")  # ~600 KB: many byte ranges
    write_day(root, a, lines_for(a, 200, 2), "more.ndjson.gz", compression="gzip")
    write_day(root, b, lines_for(b, 300, 3), "pings.ndjson.zst", compression="zstd")
    write_day(root, b, lines_for(b, 300, 4), "pings.ndjson")
    write_day(root, b, [], "empty.ndjson")
    two_members = lines_for(c, 400, 5)
    path = write_day(root, c, two_members[:150], "members.ndjson.gz", compression="gzip")
    tail = b"".join(
        json.dumps(x).encode() + b"\n" if isinstance(x, dict) else (x if isinstance(x, bytes) else x.encode()) + b"\n"
        for x in two_members[150:]
    )
    path.write_bytes(path.read_bytes() + gzip.compress(tail))
    write_day(root, c, lines_for(c, 500, 6), "plain.ndjson")
    (root / f"submission_date={c}" / "_SUCCESS").write_bytes(b"")  # an upstream marker is not input
    return root


SPLIT_BYTES = 16 << 10


def run_engine(corpus: Path, out: Path, *extra: str):
    return run(
        "run",
        "--input",
        corpus,
        "--output",
        out,
        "--min-submission-date",
        DAYS[0],
        "--max-submission-date",
        DAYS[-1],
        *extra,
    )


@pytest.fixture(scope="module")
def embedded_out(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("embedded") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("crash_aggregates.sources.SPLIT_BYTES", SPLIT_BYTES)
        result = run_engine(corpus, out, "--workers", "2", *MAX_LINE)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def spark_out(spark, corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spark") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("crash_aggregates.sources.SPLIT_BYTES", SPLIT_BYTES)
        result = run_engine(corpus, out, "--engine", "spark", *MAX_LINE)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return out


def assert_same_partition(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for key, stats in expected.items():
        assert got[key].keys() == stats.keys(), key
        for name, value in stats.items():
            assert math.isclose(got[key][name], value, rel_tol=1e-9, abs_tol=0.0), (key, name, got[key][name], value)


def assert_same_reports(got: dict, expected: dict) -> None:
    assert {k: got[k] for k in REPORT_COUNTERS} == {k: expected[k] for k in REPORT_COUNTERS}
    # Where the oversized lines were; the paths as each run was given them (relative or not).
    assert [{**e, "path": Path(e["path"]).name} for e in got["oversized_lines"]] == [
        {**e, "path": Path(e["path"]).name} for e in expected["oversized_lines"]
    ]


# -- the engines agree ---------------------------------------------------------------


def test_corpus_has_every_kind_of_input(corpus, embedded_out):
    """The corpus exercises what it claims to (checked on the embedded engine's reports)."""
    from crash_aggregates.pings import REASONS
    from crash_aggregates.sources import list_input, plan_splits

    for day in DAYS:
        report = read_report(embedded_out, day)
        assert all(report["ignored_by_reason"][reason] > 0 for reason in REASONS), (day, report["ignored_by_reason"])
        assert report["crash_pings_processed"] > 0 and report["main_pings_processed"] > 0
        activity = {a for a, _ in read_partition(embedded_out, day)}
        d = date.fromisoformat(day)
        assert min(activity) == date.fromordinal(d.toordinal() - 7).isoformat() and max(activity) == day
    kinds = {f.compression for day in DAYS for f in list_input(corpus, date.fromisoformat(day))}
    assert kinds == {"none", "gzip", "zstd"}
    ranges = plan_splits(list_input(corpus, date.fromisoformat(DAYS[0])), SPLIT_BYTES)
    assert sum(s.file.path.endswith("big.ndjson") for s in ranges) >= 10


def test_spark_partitions_equal_embedded(spark_out, embedded_out):
    for day in DAYS:
        assert_same_partition(read_partition(spark_out, day), read_partition(embedded_out, day))
        report, expected = read_report(spark_out, day), read_report(embedded_out, day)
        assert_same_reports(report, expected)
        assert report["engine"] == "spark" and expected["engine"] == "embedded"
        assert report["workers"] == 2  # local[2]
        folder = spark_out / f"submission_date={day}"
        names = sorted(p.name for p in folder.iterdir())
        assert names == ["_SUCCESS", "_flat.parquet.sidecar", "_report.json", "part-00000.parquet"]
        # The flat sidecar: the same rows as the Spark engine's part file, named in its _SUCCESS.
        success = json.loads((folder / "_SUCCESS").read_text())
        assert success["flat"]["file"] == "_flat.parquet.sidecar"
        check_sidecar(
            pq.read_table(folder / "part-00000.parquet"),
            pq.read_table(folder / "_flat.parquet.sidecar"),
            success["flat"]["keys"],
        )
    assert sorted(p.name for p in spark_out.iterdir()) == [f"submission_date={d}" for d in DAYS]


def test_oversized_lines_counted_and_located_alike(corpus, spark_out, embedded_out):
    """Both engines count every non-blank line once and find each oversized line where it is."""
    from crash_aggregates.sources import list_input

    for day in DAYS:
        files = list_input(corpus, date.fromisoformat(day))
        where, non_blank = [], 0
        for f in files:
            data = gzip.decompress(Path(f.path).read_bytes()) if f.compression == "gzip" else None
            if f.compression == "zstd":
                import zstandard

                data = zstandard.ZstdDecompressor().decompressobj().decompress(Path(f.path).read_bytes())
            data = Path(f.path).read_bytes() if data is None else data
            offset = 0
            for line in data.split(b"\n")[:-1]:
                non_blank += bool(line.strip())
                if len(line) > MAX_LINE_BYTES:
                    where.append({"path": f.path, "offset": offset, "length": len(line)})
                offset += len(line) + 1
        for out in (embedded_out, spark_out):
            report = read_report(out, day)
            assert report["oversized_lines"] == sorted(where, key=lambda e: (e["path"], e["offset"]))
            assert report["ignored_by_reason"]["oversized"] == len(where) > 0
            counted = sum(report[f"{t}_pings_{s}"] for t in ("main", "crash") for s in ("processed", "ignored"))
            assert counted == non_blank


def test_progress_from_accumulators(spark, corpus):
    """The live progress (accumulators) sees every byte and every counted line once."""
    from crash_aggregates.config import default_config
    from crash_aggregates.engines.spark import aggregate_day
    from crash_aggregates.sources import list_input, plan_splits

    day = date.fromisoformat(DAYS[2])
    files = list_input(corpus, day)
    seen = []
    total = aggregate_day(
        default_config(), day, plan_splits(files, SPLIT_BYTES), progress=lambda b, p: seen.append((b, p))
    )
    assert sum(b for b, _ in seen) == sum(f.size for f in files)
    assert sum(p for _, p in seen) == total.pings > 0


def _truncated_gzip_day(root: Path, day: str) -> Path:
    write_day(root, day, lines_for(day, 50, 7), "fine.ndjson")
    path = write_day(root, day, lines_for(day, 2000, 8), "broken.ndjson.gz", compression="gzip")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    return path


def test_corrupt_input_same_message_and_same_salvage(spark, tmp_path):
    day = DAYS[0]
    broken = _truncated_gzip_day(tmp_path / "in", day)
    args = ["run", "--input", tmp_path / "in", "--min-submission-date", day, "--max-submission-date", day]
    engines = {"embedded": ["--workers", "1", *MAX_LINE], "spark": ["--engine", "spark", *MAX_LINE]}
    messages = {}
    for engine, options in engines.items():
        result = run(*args, "--output", tmp_path / engine, *options)
        assert result.exit_code == 1
        assert "Traceback" not in result.output and "py4j" not in result.output.lower()
        [messages[engine]] = [line for line in result.output.splitlines() if "failed:" in line]
        assert not (tmp_path / engine / f"submission_date={day}").exists()
    assert messages["spark"] == messages["embedded"]
    assert str(broken) in messages["spark"] and "at byte" in messages["spark"]

    for engine, options in engines.items():
        result = run(*args, "--output", tmp_path / engine, *options, "--allow-corrupt-files")
        assert result.exit_code == 0, result.output
    assert_same_partition(read_partition(tmp_path / "spark", day), read_partition(tmp_path / "embedded", day))
    report = read_report(tmp_path / "spark", day)
    assert_same_reports(report, read_report(tmp_path / "embedded", day))
    assert [c["path"] for c in report["corrupt_files"]] == [str(broken)]


def test_splits_grouped_into_tasks_keep_their_order(spark, tmp_path):
    """Tasks of several splits (embedded.plan_tasks): corrupt files are still named in split order."""
    from crash_aggregates.config import default_config
    from crash_aggregates.engines import embedded
    from crash_aggregates.engines import spark as spark_engine
    from crash_aggregates.engines.embedded import plan_tasks
    from crash_aggregates.sources import list_input, plan_splits

    day = DAYS[0]
    broken = []
    for i in range(12):
        compression = "gzip" if i % 2 else "none"
        name = f"part-{i:02d}.ndjson" + (".gz" if compression == "gzip" else "")
        path = write_day(tmp_path, day, lines_for(day, 300, 100 + i), name, compression=compression)
        if i in (3, 7, 11):
            path.write_bytes(path.read_bytes()[:-40])
            broken.append(str(path))
    splits = plan_splits(list_input(tmp_path, date.fromisoformat(day)), 20_000)
    assert len(plan_tasks(splits)) < len(splits)  # some tasks hold several splits
    config = default_config()
    got = spark_engine.aggregate_day(config, date.fromisoformat(day), splits, allow_corrupt=True)
    want = embedded.aggregate_day(config, date.fromisoformat(day), splits, workers=1, allow_corrupt=True)
    assert [c["path"] for c in got.corrupt_files] == [c["path"] for c in want.corrupt_files] == broken
    assert (got.processed, got.ignored, got.aggregates.keys()) == (want.processed, want.ignored, want.aggregates.keys())


def test_task_failure_is_one_line(spark, tmp_path):
    """A task that cannot read its file fails the date with the task's Python error, not a Java trace."""
    from crash_aggregates.config import default_config
    from crash_aggregates.engines.spark import aggregate_day
    from crash_aggregates.sources import InputFile, Split

    missing = Split(InputFile(str(tmp_path / "gone.ndjson"), 10, "none"), 0, 10)
    with pytest.raises(EngineError) as info:
        aggregate_day(default_config(), date(2016, 3, 5), [missing])
    message = str(info.value)
    assert "\n" not in message and "FileNotFoundError" in message and "gone.ndjson" in message
    assert "at org.apache" not in message and "Traceback" not in message


# -- launched the way clusters launch jobs ------------------------------------------------


def test_spark_submit_with_py_files(spark, corpus, embedded_out, tmp_path):
    """spark-submit --py-files crash_aggregates.zip spark_job.py run ..., as on a cluster: an executor
    JVM apart from the driver (local-cluster, 2 cores), in its own working folder, and a Python that
    has the dependencies but not this package, for the driver and the executor alike."""
    import pyspark

    import crash_aggregates

    site = Path(crash_aggregates.__file__).resolve().parents[1]
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "crash_aggregates.spark_job", "package", dist], check=True, capture_output=True
    )
    # A virtualenv that sees the dependencies' site-packages but not this package.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"], check=True)
    deps = [p for p in sys.path if p.endswith("site-packages")]
    [venv_site] = (tmp_path / "venv").glob("lib/python*/site-packages")
    (venv_site / "deps.pth").write_text("\n".join(deps) + "\n")
    python = str(tmp_path / "venv" / "bin" / "python")
    probe = subprocess.run([python, "-c", "import crash_aggregates"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'crash_aggregates'" in probe.stderr, (site, probe)

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_") and k != "PYTHONPATH"}
    env.update(PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python)
    out = tmp_path / "out"
    result = subprocess.run(  # relative paths, as a user types them: the executors are elsewhere
        [
            submit,
            "--master",
            "local-cluster[1,2,1024]",
            "--conf",
            "spark.ui.enabled=false",
            "--conf",
            "spark.driver.memory=1g",
            "--py-files",
            "dist/crash_aggregates.zip",
            "dist/spark_job.py",
            "run",
            "--input",
            os.path.relpath(corpus, tmp_path),
            "--output",
            "out",
            "--min-submission-date",
            DAYS[0],
            "--max-submission-date",
            DAYS[-1],
            *MAX_LINE,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 3 date(s): 3 published" in result.stdout
    for day in DAYS:
        assert_same_partition(read_partition(out, day), read_partition(embedded_out, day))
        report = read_report(out, day)
        assert report["engine"] == "spark"
        # Default byte ranges here (no monkeypatching across processes): the counters still agree.
        assert_same_reports(report, read_report(embedded_out, day))


# -- Spark SQL reads the output --------------------------------------------------------------


def spark_ddl(location: Path) -> str:
    """What ``crash-aggregates ddl --dialect spark`` prints: the statements to run as they are."""
    result = run("ddl", "--dialect", "spark", "--location", location)
    assert result.exit_code == 0, result.output
    return result.stdout


def statements(text: str) -> list[str]:
    """Split DDL text at the ";" that end lines (the statements hold no such line ends otherwise)."""
    return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]


def first_readme_query() -> str:
    readme = (SHARED / "seed" / "original-README.md").read_text(encoding="utf-8")
    return re.search(r"```sql\n(.*?)```", readme, re.S).group(1)


def test_spark_sql_reads_the_output(spark, spark_out):
    text = spark_ddl(spark_out.resolve())
    spark.sql("DROP TABLE IF EXISTS crash_aggregates")
    for statement in statements(text):
        spark.sql(statement)
    partitions = [r[0] for r in spark.sql("SHOW PARTITIONS crash_aggregates").collect()]
    assert sorted(partitions) == [f"submission_date={d}" for d in DAYS]

    rows = [row for day in DAYS for row in _rows(spark_out, day)]
    got = spark.sql(first_readme_query()).collect()

    # The same numbers computed in plain Python from the partitions' rows.
    sums: dict = {}
    for dims, stats in rows:
        acc = sums.setdefault(
            dims.get("channel"),
            dict.fromkeys(
                ("usage_hours", "main_crashes", "content_crashes", "plugin_crashes", "gmplugin_crashes"), 0.0
            ),
        )
        for name in acc:
            acc[name] += stats[name]
    assert len(got) == len(sums)
    assert [r["usage_hours"] for r in got] == sorted((r["usage_hours"] for r in got), reverse=True)
    for r in got:
        expected = sums[r["channel"]]
        assert expected["usage_hours"] > 0
        assert math.isclose(r["usage_hours"], expected["usage_hours"], rel_tol=1e-9)
        for stat in ("main", "content", "plugin", "gmplugin"):
            rate = 1000 * expected[f"{stat}_crashes"] / expected["usage_hours"]
            assert math.isclose(r[f"{stat}_crash_rate"], rate, rel_tol=1e-9), (r, stat)
    assert None in sums and "" in sums  # absent channel (NULL) and empty channel are two groups

    # ... and the same numbers as `crash-aggregates sql` gives for the same query.
    from crash_aggregates import query

    ours = {r["channel"]: r for r in query(first_readme_query(), str(spark_out)).to_pylist()}
    assert ours.keys() == {r["channel"] for r in got}
    for r in got:
        for column in (
            "usage_hours",
            "main_crash_rate",
            "content_crash_rate",
            "plugin_crash_rate",
            "gmplugin_crash_rate",
        ):
            assert math.isclose(r[column], ours[r["channel"]][column], rel_tol=1e-9), (r, column)

    # The partition column and the README's filter on it.
    day = DAYS[1]
    [[total]] = spark.sql(
        f"select sum(stats['usage_hours']) from crash_aggregates where submission_date = '{day}'"
    ).collect()
    assert math.isclose(total, sum(s["usage_hours"] for _, s in _rows(spark_out, day)), rel_tol=1e-9)


def spark_totals(frame) -> dict:
    """``{submission date: {"aggregates": rows, stat: sum}}`` of a DataFrame of the aggregates."""
    from pyspark.sql import functions as F

    rows = (
        frame.groupBy(F.col("submission_date").cast("string").alias("day"))
        .agg(F.count("*").alias("aggregates"), *[F.sum(F.col("stats")[s]).alias(s) for s in stat_names()])
        .collect()
    )
    return {r["day"]: {k: r[k] for k in ["aggregates", *stat_names()]} for r in rows}


def test_spark_reads_a_published_folder_as_sql_does(spark, tmp_path):
    """Spark on the folder and on a glob of it counts each aggregate once: the flat sidecars stay unread."""
    root = publish_with_job(tmp_path)
    totals = sql_totals(root)
    assert same_totals(totals, part_file_totals(root))
    assert same_totals(spark_totals(spark.read.parquet(str(root))), totals)
    globbed = spark.read.option("basePath", str(root)).parquet(f"{root}/*/*.parquet")
    assert same_totals(spark_totals(globbed), totals)
    [[count]] = spark.sql(f"SELECT count(*) FROM parquet.`{root}`").collect()
    assert count == sum(day["aggregates"] for day in totals.values())
    # The snippet of docs/readers.md, as it is written.
    [code] = snippets("Spark", "python")
    _, names = run_snippet(code.replace('"/data/aggregates"', repr(str(root))), spark=spark)
    assert same_totals(spark_totals(names["aggregates"]), totals)
    # Spark skips files whose name starts with _, in a folder and in a glob alike: it read the
    # layout of earlier versions (sidecar _flat.parquet) right too.
    legacy_layout(root)
    assert same_totals(spark_totals(spark.read.parquet(str(root))), totals)
    globbed = spark.read.option("basePath", str(root)).parquet(f"{root}/*/*.parquet")
    assert same_totals(spark_totals(globbed), totals)


def _rows(root: Path, day: str):
    import pyarrow.parquet as pq

    for part in sorted((root / f"submission_date={day}").glob("part-*.parquet")):
        for row in pq.read_table(part).to_pylist():
            yield dict(row["dimensions"]), dict(row["stats"])


# -- the command line without Spark --------------------------------------------------------


def _spark_run_process(tmp_path, env):
    (tmp_path / "in").mkdir(exist_ok=True)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "crash_aggregates.cli",
            "run",
            "--engine",
            "spark",
            "--input",
            tmp_path / "in",
            "--output",
            tmp_path / "out",
            "--min-submission-date",
            DAYS[0],
            "--max-submission-date",
            DAYS[0],
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_missing_java_exit_2_one_line(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    env["PATH"] = str(empty)
    result = _spark_run_process(tmp_path, env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Java 17 or later" in lines[0] and "no `java` on PATH and JAVA_HOME is not set" in lines[0]
    assert not (tmp_path / "out").exists()

    env["JAVA_HOME"] = str(tmp_path / "nowhere")
    result = _spark_run_process(tmp_path, env)
    assert result.returncode == 2 and "JAVA_HOME is" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_old_java_exit_2(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "java"
    fake.write_text("#!/bin/sh\necho 'java version \"1.8.0_292\"' >&2\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    env["PATH"] = str(bin_dir)
    result = _spark_run_process(tmp_path, env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: the Spark engine needs Java 17 or later: {fake} is Java 8; install a JDK or JRE 17+ "
        "(e.g. openjdk-17-jre-headless) and put it on PATH or set JAVA_HOME"
    ]


def test_missing_pyspark_exit_2(tmp_path):
    (tmp_path / "in").mkdir()
    code = textwrap.dedent(f"""
        import sys
        sys.modules["pyspark"] = None  # as if the spark extra were not installed
        from crash_aggregates.cli import main
        sys.argv = ["crash-aggregates", "run", "--engine", "spark", "--input", {str(tmp_path / "in")!r},
                    "--output", {str(tmp_path / "out")!r},
                    "--min-submission-date", "20160305", "--max-submission-date", "20160305"]
        main()
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: the Spark engine needs pyspark, which is not installed: pip install 'crash-aggregates[spark]'"
    ]


def test_pyspark_is_not_imported_without_the_spark_engine():
    code = (
        "import sys, crash_aggregates.cli, crash_aggregates.job, crash_aggregates.engines.spark, "
        "crash_aggregates.spark_job; assert 'pyspark' not in sys.modules, 'pyspark imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert run_process("--help").returncode == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--engine", "embedded", "--spark-master", "local[2]"], "--spark-master goes with --engine spark"),
        (["--engine", "spark", "--workers", "2"], "--workers is for the embedded engine"),
    ],
)
def test_engine_options_exit_2(tmp_path, args, message):
    (tmp_path / "in").mkdir()
    result = run_process("run", "--input", tmp_path / "in", "--output", tmp_path / "out", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_package_zip_is_importable_alone(tmp_path):
    """What --py-files / addPyFile ship: the whole package, importable from the zip."""
    from crash_aggregates.engines.spark import package_zip

    archive = package_zip(tmp_path / "crash_aggregates.zip")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import crash_aggregates.spark_job, crash_aggregates.engines.spark as s; "
        "assert '.zip' in s.__file__, s.__file__"
    )
    subprocess.run([sys.executable, "-c", code, archive], check=True, cwd=tmp_path)


@pytest.mark.parametrize("require, outcome", [("", "1 skipped"), ("1", "1 error")])
def test_skip_only_without_java_and_never_in_ci(tmp_path, require, outcome):
    """Without Java the Spark tests skip; with CRASH_AGGREGATES_REQUIRE_SPARK=1 (.ci/run) they fail."""
    from helpers import REPO

    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    env.update(PATH=str(tmp_path), CRASH_AGGREGATES_REQUIRE_SPARK=require)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_spark.py",
            "-k",
            "test_task_failure_is_one_line",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert outcome in result.stdout, result.stdout[-2000:]
    assert (result.returncode == 0) == (require == ""), result.stdout[-2000:]
    if require:
        assert "CRASH_AGGREGATES_REQUIRE_SPARK=1 but Spark cannot run" in result.stdout


def test_limit_on_distinct_aggregates(spark, tmp_path):
    """Spark counts the aggregates on the executors before collecting them: past the limit the
    date fails with the embedded engine's message (counted over the whole day), its previous
    partition kept; at the limit it is published as without one."""
    from test_limits import DAY as LIMITS_DAY
    from test_limits import distinct_values, expected_message
    from test_limits import ping as distinct_ping

    pings = [distinct_ping(i) for i in range(90)]
    write_day(tmp_path / "in", LIMITS_DAY, pings[:45], "a.ndjson")
    write_day(tmp_path / "in", LIMITS_DAY, pings[45:], "b.ndjson")
    args = ["run", "--input", tmp_path / "in", "--output", tmp_path / "out", "--engine", "spark"]
    args += ["--min-submission-date", LIMITS_DAY, "--max-submission-date", LIMITS_DAY]
    assert run(*args, "--max-aggregates", "90").exit_code == 0
    before = read_partition(tmp_path / "out", LIMITS_DAY)
    assert len(before) == 90

    result = run(*args, "--max-aggregates", "89")
    assert result.exit_code == 1
    assert expected_message(89, 90, distinct_values(pings)) in result.output
    assert "Traceback" not in result.output
    assert read_partition(tmp_path / "out", LIMITS_DAY) == before


# -- property (c) of test_properties.py: generated days --------------------------------


def test_generated_days_equal_the_embedded_engines(spark):
    """Property (c) on the Spark engine: days of generated pings (every kind of damage, every
    compression, a line limit that generated lines fall on both sides of) give the embedded
    engine's 1-worker answer: the same keys, counters and oversized lines, and stats equal to
    1e-9 relative (Spark adds the floats in another order; see engines/spark.py)."""
    import tempfile
    from dataclasses import replace

    from hypothesis import given, settings
    from hypothesis import strategies as st
    from pingstrategies import D
    from test_properties import RULES, close_stats, compression_lists, day_files, line_limits, write_day_files

    from crash_aggregates.engines import embedded
    from crash_aggregates.engines import spark as spark_engine
    from crash_aggregates.sources import list_input, plan_splits

    @settings(max_examples=8)  # each a Spark job of a few seconds; derandomized (conftest.py)
    @given(files=day_files, compressions=compression_lists, split_bytes=st.integers(64, 4096), limit=line_limits)
    def check(files, compressions, split_bytes, limit):
        config = replace(RULES.config, max_line_size=limit)
        with tempfile.TemporaryDirectory() as folder:
            write_day_files(Path(folder), files, compressions)
            splits = plan_splits(list_input(folder, D), split_bytes)
            expected = embedded.aggregate_day(config, D, splits, workers=1)
            got = spark_engine.aggregate_day(config, D, splits)
        assert (got.processed, got.ignored) == (expected.processed, expected.ignored)
        assert got.oversized_lines == expected.oversized_lines
        assert got.aggregates.keys() == expected.aggregates.keys()
        assert close_stats(got.aggregates, expected.aggregates)

    check()
