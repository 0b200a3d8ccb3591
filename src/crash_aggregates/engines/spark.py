"""The Spark engine: the same per-split code as the embedded engine, run by Spark.

One day's splits (``sources.plan_splits``) are grouped into tasks as the
embedded engine groups them (``embedded.plan_tasks``: consecutive splits, big
tasks first), one Spark partition each: pyspark spends some 35 ms starting
each task in its Python worker, which one task per split paid ~100 times on
a 2 GB day. Each task sums its splits, one by one, with
``embedded.aggregate_split`` -- the project's own readers and ``PingRules``,
so there is no second copy of any SPEC rule -- and emits one
``(key, stat sums)`` record per aggregate plus one record holding the split's
counters. ``reduceByKey`` adds them up on the executors; only the reduced
rows (one per distinct key, bounded by the cardinality of the dimensions, not
by the number of pings) are collected to the driver, which writes and
publishes the partition with ``storage.publish_partition`` like the embedded
engine.

Decisions:

* The report's counters travel with the data, under their own key, through
  the same ``reduceByKey``. Spark applies the output of every map task
  exactly once, whereas accumulator updates made in a transformation are
  applied again when a task is retried or speculated, which would break
  "processed + ignored = lines read". Accumulators are used for what may be
  approximate: the live progress bar (bytes and pings read).
* A corrupt compressed file never fails a Spark task (a retried task would
  fail again, four times on a cluster): tasks always keep the readable lines
  and report the damage; the driver then fails the date with the embedded
  engine's ``CorruptInput`` message unless ``allow_corrupt``, naming the first
  damaged file in split order.
* Any other task failure (an unreadable file, a worker that died) is retried
  by Spark as usual; if the job still fails, the driver raises
  ``EngineError`` with one line (the Python exception of the task), never a
  Java stack trace.
* Sums are added in the order Spark's shuffle delivers them, so a stat may
  differ from the embedded engine's in its last bits (well within 1e-9
  relative); keys, counts and counters are identical.
* The limit on distinct aggregates (``aggregate_limit``) is checked before
  anything is collected: the reduced rows are kept by the executors
  (persisted, memory then disk) and counted there; past the limit, the
  distinct values of each dimension are counted there too, and the date
  fails with ``TooManyAggregates`` as with the embedded engine; else the
  rows are collected from what the executors kept.

pyspark is imported inside functions only: ``crash-aggregates --help`` and
the embedded engine never load it.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from datetime import date
from pathlib import Path

from ..aggregate import DayAggregate, TooManyAggregates, aggregate_limit
from ..config import Config
from ..errors import ExitCode
from ..pings import PingRules
from ..sources import CorruptInput, Split
from . import EngineError, ProgressFn
from .embedded import aggregate_split, plan_tasks

#: Oldest Java that the engine accepts (Spark 4 needs 17).
MIN_JAVA = 17
#: Key of the per-split counter records; aggregate keys are (activity_date, dims) tuples.
COUNTERS = "__counters__"
PIP_HINT = "pip install 'crash-aggregates[spark]'"


class SparkUnavailable(EngineError):
    """Spark cannot be started here (no pyspark, no suitable Java, a bad master): nothing runs."""

    exit_code = ExitCode.USAGE


# -- prerequisites and the session -------------------------------------------


def java_problem() -> str | None:
    """Why the Java that Spark would launch is unusable, or None if it is fine.

    Looks where ``spark-class`` looks: ``$JAVA_HOME/bin/java``, else ``java`` on PATH.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        java = os.path.join(java_home, "bin", "java")
        if not os.access(java, os.X_OK):
            return f"JAVA_HOME is {java_home} but it has no bin/java"
    else:
        java = shutil.which("java")
        if not java:
            return "no `java` on PATH and JAVA_HOME is not set"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run {java} ({e})"
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return f"cannot tell the version of {java}"
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_292" is Java 8
        major = int(m.group(2))
    if major < MIN_JAVA:
        return f"{java} is Java {major}"
    return None


def _jvm_provided() -> bool:
    """True when spark-submit, Databricks or a notebook already runs the JVM that pyspark talks to."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ


def check_prerequisites() -> None:
    """Raise SparkUnavailable with one line saying what to install."""
    import importlib.util

    try:
        found = importlib.util.find_spec("pyspark") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise SparkUnavailable(f"the Spark engine needs pyspark, which is not installed: {PIP_HINT}")
    if not _jvm_provided():
        problem = java_problem()
        if problem:
            raise SparkUnavailable(
                f"the Spark engine needs Java {MIN_JAVA} or later: {problem}; install a JDK or JRE "
                f"{MIN_JAVA}+ (e.g. openjdk-{MIN_JAVA}-jre-headless) and put it on PATH or set JAVA_HOME"
            )


_session = None  # the SparkSession of this process, reused for every date
_owned = False  # True when this module launched Spark (and so stops it)


def start(master: str | None = None):
    """The SparkSession for this run: an existing one, else a new one.

    A new session uses ``master`` if given, else what spark-submit or the
    Spark configuration provides, else ``local[*]``.
    """
    global _session, _owned
    if _session is not None:
        return _session
    check_prerequisites()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    creating = SparkContext._active_spark_context is None
    builder = SparkSession.builder
    if creating:
        if master:
            builder = builder.master(master)
        if not _jvm_provided():
            # A plain process: pyspark launches the JVM.
            builder = builder.appName("crash-aggregates").config("spark.ui.showConsoleProgress", "false")
            _quiet_logs()
            if _is_local(master or _configured_master()):
                _quick_jit()
                if "PYSPARK_PYTHON" not in os.environ:
                    # Local workers run this interpreter (with this package's dependencies), not "python3".
                    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        session = builder.getOrCreate()
    except Exception as e:  # py4j and pyspark raise many kinds
        where = f" with master {master}" if master else ""
        raise SparkUnavailable(f"cannot start Spark{where}: {one_line(e)}") from None
    if creating and not _is_local(session.sparkContext.master):
        _ship_package(session.sparkContext)
    # A session of spark-submit ends with the application; one of Databricks must never be stopped.
    _session, _owned = session, creating and not _jvm_provided()
    if _owned:
        atexit.register(stop)
    return session


def _is_local(master: str) -> bool:
    """True for the masters whose tasks run in the driver's JVM: local, local[N], local[N,F], local[*].

    >>> [_is_local(m) for m in ("local", "local[*]", "local[2,3]", "local-cluster[1,1,1024]", "yarn")]
    [True, True, True, False, False]
    """
    return re.fullmatch(r"local(\[[^\]]*\])?", master.strip()) is not None


def _spark_conf_dir() -> str:
    return os.environ.get("SPARK_CONF_DIR") or os.path.join(os.environ.get("SPARK_HOME", "/nonexistent"), "conf")


def _configured_master() -> str:
    """The master a session launched from this process gets without one: spark-defaults.conf, $MASTER, local[*]."""
    try:
        with open(os.path.join(_spark_conf_dir(), "spark-defaults.conf"), encoding="utf-8") as f:
            for line in f:
                parts = line.split(None, 1)
                if len(parts) == 2 and parts[0] == "spark.master":
                    return parts[1].strip()
    except OSError:
        pass
    return os.environ.get("MASTER") or "local[*]"


#: Spark's log configuration when the command line starts Spark itself: warnings (Spark's
#: default), minus the task failure logs (Python and Java stack traces; the job reports a
#: failure in one line) and the start-up notices of a laptop (loopback hostname, no native
#: Hadoop library). The root level stays at warn, so that Spark adds no notice of its own.
LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = off
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
"""


def _quick_jit() -> None:
    """Have a local JVM compile with the quick compiler only (C1), unless JVM options say otherwise.

    In local mode the JVM schedules tasks and moves a few MB of sums; the
    work is in the Python workers. The optimizing compiler (C2) spent
    2.6 of its 6.1 CPU-seconds on a realistic 2 GB day compiling Spark's code, on the cores the
    workers need: with C1 alone, ``run --engine spark`` on ``local[2]`` took
    13.7 s instead of 17.2 s for a realistic 1 GB day (docs/performance.md).
    """
    opts = os.environ.get("SPARK_SUBMIT_OPTS", "")
    if "TieredStopAtLevel" not in opts and "TieredCompilation" not in opts:
        os.environ["SPARK_SUBMIT_OPTS"] = f"{opts} -XX:TieredStopAtLevel=1".strip()


def _quiet_logs() -> None:
    """Give the JVM that pyspark is about to launch LOG4J2, unless Spark's configuration has its own."""
    conf_dir = _spark_conf_dir()
    opts = os.environ.get("SPARK_SUBMIT_OPTS", "")
    if os.path.exists(os.path.join(conf_dir, "log4j2.properties")) or "log4j2.configurationFile" in opts:
        return
    fd, path = tempfile.mkstemp(prefix="crash-aggregates-log4j2-", suffix=".properties")
    with os.fdopen(fd, "w") as f:
        f.write(LOG4J2)
    atexit.register(_remove, path)
    os.environ["SPARK_SUBMIT_OPTS"] = f"{opts} -Dlog4j2.configurationFile=file:{path}".strip()


def stop() -> None:
    """Stop the session if this module started it (at exit: the session serves every run of the process)."""
    global _session, _owned
    if _session is not None and _owned:
        _session.stop()
    _session, _owned = None, False


def parallelism() -> int:
    """How many tasks the session runs at once (cores of the executors)."""
    return start().sparkContext.defaultParallelism


def package_zip(dest: str | os.PathLike) -> Path:
    """Write this package as a zip for ``--py-files`` / ``addPyFile``; returns its path."""
    root = Path(__file__).resolve().parents[1]  # .../crash_aggregates
    dest = Path(dest)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(root.rglob("*")):
            # Compiled modules can't be imported from a zip: executors running the
            # zip parse with the msgspec tier (the same answers, more slowly).
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".so", ".pyd", ".c"}:
                z.write(path, Path(root.name) / path.relative_to(root))
    return dest


def _ship_package(sc) -> None:
    """On a cluster, send this package to the executors unless it already came as --py-files."""
    import crash_aggregates

    if ".zip" in crash_aggregates.__file__ or ".whl" in crash_aggregates.__file__:
        return
    folder = Path(tempfile.mkdtemp(prefix="crash-aggregates-spark-"))
    atexit.register(shutil.rmtree, folder, True)
    sc.addPyFile(str(package_zip(folder / "crash_aggregates.zip")))


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- the job ----------------------------------------------------------------------

_rules_cache: dict = {}


def _rules(config: Config, day: date) -> PingRules:
    """One PingRules per Python worker and date (workers are reused across tasks)."""
    rules = _rules_cache.get((config, day))
    if rules is None:
        _rules_cache.clear()
        rules = _rules_cache[config, day] = PingRules(config, day)
    return rules


def _sum_splits(config: Config, day: date, read_bytes, read_pings, items):
    """A Spark partition's task: (index, split) in, (key, sums) and counter records out."""
    from .. import stores

    # Executors do not inherit the driver's environment: the stores' settings
    # (the S3 endpoint) travel with the config.
    stores.configure(config)
    rules = _rules(config, day)
    for index, split in items:
        partial = aggregate_split(rules, split, allow_corrupt=True)
        yield from partial.aggregates.items()
        counters = DayAggregate()
        counters.processed, counters.ignored = partial.processed, partial.ignored
        counters.corrupt_files = [(index, entry) for entry in partial.corrupt_files]
        counters.oversized_lines = partial.oversized_lines
        yield COUNTERS, counters
        read_bytes.add(split.size)
        read_pings.add(partial.pings)


def _absolute(split: Split) -> Split:
    """The split with an absolute local path: executors do not share the driver's working folder."""
    path = split.file.path
    if "://" in path or os.path.isabs(path):
        return split
    return dataclasses.replace(split, file=dataclasses.replace(split.file, path=os.path.abspath(path)))


def _combine(a, b):
    """reduceByKey's function: stat sums add up element-wise, counters merge."""
    if type(a) is list:
        for i, x in enumerate(b):
            a[i] += x
        return a
    return a.merge(b)


def aggregate_day(
    config: Config,
    day: date,
    splits: list[Split],
    master: str | None = None,
    allow_corrupt: bool = False,
    progress: ProgressFn | None = None,
    workers: int | None = None,  # same signature as the embedded engine; Spark decides
    prepare: Callable[[], object] | None = None,
) -> DayAggregate:
    """Aggregate every split of a day on Spark; raises CorruptInput unless ``allow_corrupt``."""
    if prepare:
        prepare()
    session = start(master)
    sc = session.sparkContext
    read_bytes, read_pings = sc.accumulator(0), sc.accumulator(0)
    # One Spark partition per task; each split with its index (the order of corrupt files) and an
    # absolute path (executors run elsewhere).
    tasks, first = [], 0
    for task in plan_tasks(splits):
        tasks.append([(first + j, _absolute(split)) for j, split in enumerate(task)])
        first += len(task)
    reduced = (
        sc.parallelize(tasks, max(len(tasks), 1))
        .flatMap(lambda task: task)
        .mapPartitions(lambda items: _sum_splits(config, day, read_bytes, read_pings, items))
        .reduceByKey(_combine, numPartitions=max(1, min(len(tasks), sc.defaultParallelism)))
    )
    sc.setJobDescription(f"crash-aggregates {day}: {len(splits)} split(s)")
    from pyspark import StorageLevel

    reduced.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with _Progress(read_bytes, read_pings, progress):
            try:
                _check_limit(reduced, aggregate_limit(config), [d.name for d in config.dimensions])
                rows = reduced.collect()
            except TooManyAggregates:
                raise
            except Exception as e:  # a failed Spark job, reported in one line
                raise EngineError(f"the Spark job failed: {one_line(e)}") from None
            finally:
                sc.setJobDescription(None)
    finally:
        reduced.unpersist()

    total = DayAggregate()
    counters = DayAggregate()
    for key, value in rows:
        if key == COUNTERS:
            counters = value
        else:
            total.aggregates[key] = value
    corrupt = sorted(counters.corrupt_files, key=lambda item: item[0])
    for index, entry in corrupt:  # the path as the job was given it, like the embedded engine
        entry["path"] = splits[index].file.path
    if corrupt and not allow_corrupt:
        first = corrupt[0][1]
        raise CorruptInput(first["path"], first["offset"], first["error"])
    total.processed, total.ignored = counters.processed, counters.ignored
    total.corrupt_files = [entry for _, entry in corrupt]
    # Named as the job was given them, like the embedded engine does (and so in its order).
    given = {_absolute(split).file.path: split.file.path for split in splits}
    total.oversized_lines = sorted(
        line._replace(path=given.get(line.path, line.path)) for line in counters.oversized_lines
    )
    return total


def _is_aggregate(record) -> bool:
    return record[0] != COUNTERS


def _dimension_values(record):
    """(dimension index, value) of each dimension present in an aggregate's key."""
    return [(j, value) for j, value in enumerate(record[0][1]) if value is not None]


def _check_limit(reduced, limit: int, dimension_names: list[str]) -> None:
    """Raise ``TooManyAggregates`` if the reduced rows hold more than ``limit`` aggregates, counted by the executors."""
    aggregates = reduced.filter(_is_aggregate)
    count = aggregates.count()
    if count > limit:
        distinct = aggregates.flatMap(_dimension_values).distinct().countByKey()
        raise TooManyAggregates(limit, count, [(name, distinct.get(j, 0)) for j, name in enumerate(dimension_names)])


class SparkEngine:
    """Spark: one session for every date of a run, started by ``start`` (``--spark-master``)."""

    name = "spark"
    aggregate_day = staticmethod(aggregate_day)

    def start(self, workers: int | None = None, master: str | None = None) -> int:
        """Start the session (stopped at exit); Spark's parallelism, not ``workers``, says how many tasks run."""
        start(master)  # the module's start()
        return parallelism()


ENGINE = SparkEngine()


class _Progress:
    """Feed the progress callback from accumulators while a job runs (a daemon thread)."""

    def __init__(self, read_bytes, read_pings, progress: ProgressFn | None):
        self.accumulators, self.progress = (read_bytes, read_pings), progress
        self.stopped = threading.Event()
        self.sent = (0, 0)

    def _poll(self) -> None:
        while True:
            finished = self.stopped.wait(0.5)
            now = tuple(a.value for a in self.accumulators)
            if now != self.sent:
                self.progress(now[0] - self.sent[0], now[1] - self.sent[1])
                self.sent = now
            if finished:
                return

    def __enter__(self):
        if self.progress:
            self.thread = threading.Thread(target=self._poll, name="spark-progress", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.stopped.set()
            self.thread.join()
        return False


# -- errors -----------------------------------------------------------------------

_PY_ERROR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)\b.*)$", re.M)


def one_line(error: BaseException) -> str:
    """The gist of a pyspark/py4j error: the task's Python exception, else the first line."""
    text = str(error)
    java = getattr(error, "java_exception", None)
    if java is not None:
        try:
            text = str(java.getMessage()) or text
        except Exception:  # the JVM may be gone
            pass
    if "Traceback (most recent call last)" in text:
        python = text.split("Traceback (most recent call last)", 1)[1].split("\n\tat ", 1)[0]
        found = _PY_ERROR.findall(python)
        if found:
            return found[-1].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    return first[:500]
