"""The embedded engine: splits of one day's input spread over local worker processes.

Each split is summed into its own partial aggregate and the partials are
merged in split order, so the floating-point sums do not depend on the number
of workers or on which worker finished first: any ``--workers`` gives the
same bytes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import date
from typing import Callable

from ..aggregate import DayAggregate
from ..config import Config
from ..location import is_s3
from ..pings import PingRules
from ..sources import CorruptInput, Split, read_batches

#: Called with (bytes read, pings evaluated) since the previous call.
ProgressFn = Callable[[int, int], None]


def aggregate_split(rules: PingRules, split: Split, allow_corrupt: bool, progress: ProgressFn | None = None) -> DayAggregate:
    """Sum one split; a corrupt compressed file fails it unless ``allow_corrupt``."""
    partial = DayAggregate()
    counted = 0

    def report(nbytes: int) -> None:
        nonlocal counted
        pings = partial.pings
        progress(nbytes, pings - counted)
        counted = pings

    try:
        partial.add_batches(rules, read_batches(split, report if progress else None))
    except CorruptInput as e:
        if not allow_corrupt:
            raise
        partial.corrupt_files.append({"path": e.path, "offset": e.offset, "error": e.detail})
    return partial


# State of a worker process, set once by the pool initializer.
_worker: dict = {}


def _init_worker(config: Config, day: date, progress_queue) -> None:
    _worker["rules"] = PingRules(config, day)
    _worker["queue"] = progress_queue


def _report_progress(nbytes: int, pings: int) -> None:
    _worker["queue"].put((nbytes, pings))


def _run_split(split: Split, allow_corrupt: bool) -> DayAggregate:
    return aggregate_split(_worker["rules"], split, allow_corrupt, _report_progress)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def aggregate_day(
    config: Config,
    day: date,
    splits: list[Split],
    workers: int | None = None,
    allow_corrupt: bool = False,
    progress: ProgressFn | None = None,
    prepare: Callable[[], object] | None = None,
) -> DayAggregate:
    """Aggregate every split of a day; raises CorruptInput unless ``allow_corrupt``.

    ``prepare`` is called once while the workers read, after they have
    started: the caller's chance to get ready for what follows (the job
    imports its Parquet writer there) without delaying them or forking it
    into them.
    """
    workers = min(workers or default_workers(), len(splits)) or 1
    total = DayAggregate()
    if workers == 1:
        if prepare:
            prepare()
        rules = PingRules(config, day)
        for split in splits:
            total.merge(aggregate_split(rules, split, allow_corrupt, progress))
        return total

    # Forking a parent whose S3 layer already runs an I/O thread (s3fs's event
    # loop) can kill the child; S3 splits get freshly spawned workers.
    remote = any(is_s3(split.file.path) for split in splits)
    fork = "fork" in mp.get_all_start_methods() and not remote
    ctx = mp.get_context("fork" if fork else "spawn")
    progress_queue = ctx.Queue()
    done: dict[int, DayAggregate] = {}
    next_index = 0
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(config, day, progress_queue)) as pool:
        pending = {pool.submit(_run_split, split, allow_corrupt): i for i, split in enumerate(splits)}
        try:
            if prepare:  # the pool has started its processes on the first submits
                prepare()
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, progress)
                for future in finished:
                    done[pending.pop(future)] = future.result()
                # Merge in split order, as soon as the next partial is there.
                while next_index in done:
                    total.merge(done.pop(next_index))
                    next_index += 1
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            _drain(progress_queue, progress)
    return total


def _drain(progress_queue, progress: ProgressFn | None) -> None:
    while True:
        try:
            nbytes, pings = progress_queue.get_nowait()
        except queue.Empty:
            return
        if progress:
            progress(nbytes, pings)
