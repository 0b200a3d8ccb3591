"""Entry point for ``spark-submit``: the ``crash-aggregates`` command line on the Spark engine.

Ship the package with ``--py-files`` and give this file as the application::

    python -m crash_aggregates.spark_job package dist/     # dist/crash_aggregates.zip + dist/spark_job.py
    spark-submit --master yarn --py-files dist/crash_aggregates.zip dist/spark_job.py \\
        run --input /data/pings --output /data/aggregates --min-submission-date 20160305

The arguments are those of ``crash-aggregates``; ``run`` gets ``--engine
spark`` unless it names an engine, and the master is the one spark-submit
was given. The package's dependencies (msgspec, isal, backports.zstd, pyarrow,
click, rich...) must be importable by the driver's and the executors' Python:
see docs/spark.md.
"""

import os
import sys

if __name__ == "__main__" and not __package__:
    # Run as a file (spark-submit .../spark_job.py): its folder is sys.path[0] and
    # holds this package's modules, which must not shadow top-level names.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]


def package(folder: str) -> None:
    """Write crash_aggregates.zip (for --py-files) and spark_job.py (the application) into folder."""
    import shutil

    from crash_aggregates.engines.spark import package_zip

    os.makedirs(folder, exist_ok=True)
    archive = package_zip(os.path.join(folder, "crash_aggregates.zip"))
    script = shutil.copyfile(os.path.abspath(__file__), os.path.join(folder, "spark_job.py"))
    print(f"wrote {archive} and {script}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 2 and args[0] == "package":
        package(args[1])
        return
    if args[:1] == ["run"] and not any(a == "--engine" or a.startswith("--engine=") for a in args):
        args[1:1] = ["--engine", "spark"]
    from crash_aggregates.cli import cli

    cli.main(args, prog_name="spark_job.py")


if __name__ == "__main__":
    main()
