"""The embedded engine: splits of one day's input spread over local worker processes.

The splits are grouped into tasks of consecutive splits (``plan_tasks``),
each summed into its own partial aggregate; the partials are merged in task
order. The grouping depends on the input alone, so the floating-point sums do
not depend on the number of workers or on which worker finished first: any
``--workers`` gives the same bytes.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from datetime import date

from ..aggregate import DayAggregate, Limit
from ..config import Config
from ..memory import keep_freed_memory
from ..pings import PingRules
from ..sources import CorruptInput, Split, read_batches
from ..stores import store_for
from . import EngineError, ProgressFn

#: Tasks shrink from this size to one split as the input left to plan
#: shrinks (``plan_tasks``).
MAX_TASK_BYTES = 256 << 20
#: A task takes this share of the input left: big tasks first, small ones at
#: the end, so that no worker is left alone with a big one.
TASK_SHARE = 1 / 8


def plan_tasks(splits: list[Split]) -> list[list[Split]]:
    """Consecutive splits grouped into tasks, from the input alone (not the number of workers).

    Each task's partial costs the parent an unpickle and a merge per
    aggregate, which for small pings (a new aggregate every few pings) cost
    as much as summing them split by split; one task per split would also
    repeat each aggregate in every split.

    >>> from crash_aggregates.sources import InputFile
    >>> f = InputFile("p.ndjson", 64 << 20, "none")
    >>> [len(t) for t in plan_tasks([Split(f, i << 20, (i + 1) << 20) for i in range(64)])]
    [8, 7, 6, 5, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    left = sum(split.size for split in splits)
    tasks: list[list[Split]] = []
    task: list[Split] = []
    size = 0
    for split in splits:
        if task and size + split.size > min(MAX_TASK_BYTES, left * TASK_SHARE):
            tasks.append(task)
            left -= size
            task, size = [], 0
        task.append(split)
        size += split.size
    if task:
        tasks.append(task)
    return tasks


def aggregate_split(
    rules: PingRules,
    split: Split,
    allow_corrupt: bool,
    progress: ProgressFn | None = None,
    into: DayAggregate | None = None,
) -> DayAggregate:
    """Sum one split into ``into`` (default: a new partial), which is returned.

    A corrupt compressed file fails the split unless ``allow_corrupt``.
    """
    partial = DayAggregate() if into is None else into
    counted = partial.pings

    def report(nbytes: int) -> None:
        nonlocal counted
        pings = partial.pings
        progress(nbytes, pings - counted)
        counted = pings

    try:
        partial.add_batches(rules, read_batches(split, report if progress else None, rules.config.max_line_size))
    except CorruptInput as e:
        if not allow_corrupt:
            raise
        partial.corrupt_files.append({"path": e.path, "offset": e.offset, "error": e.detail})
    return partial


#: Seconds between a worker's progress messages: one per block would cost
#: the parent (and the worker's queue thread) a pickle per megabyte read.
PROGRESS_INTERVAL = 0.1

# State of a worker process, set once by the pool initializer.
_worker: dict = {}


def _init_worker(config: Config, day: date, progress_queue, limit: Limit) -> None:
    """``progress_queue`` is None when nobody watches the progress."""
    keep_freed_memory()
    _worker.update(rules=PingRules(config, day), queue=progress_queue, unsent=[0, 0], next_send=0.0, limit=limit)


def _report_progress(nbytes: int, pings: int) -> None:
    unsent = _worker["unsent"]
    unsent[0] += nbytes
    unsent[1] += pings
    if time.monotonic() >= _worker["next_send"]:
        _send_progress()


def _send_progress() -> None:
    unsent = _worker["unsent"]
    if unsent != [0, 0]:
        _worker["queue"].put(tuple(unsent))
        unsent[:] = [0, 0]
    _worker["next_send"] = time.monotonic() + PROGRESS_INTERVAL


def aggregate_task(
    rules: PingRules,
    task: list[Split],
    allow_corrupt: bool,
    progress: ProgressFn | None = None,
    limit: Limit | None = None,
) -> DayAggregate:
    """Sum a task's splits, in order, into one partial.

    ``limit`` is checked after each split: a task of up to ``MAX_TASK_BYTES``
    of tiny pings could otherwise hold a million aggregates before the
    parent counts them (the share of the input told is this task's part).

    The cyclic garbage collector pauses meanwhile: summing makes no reference
    cycles, and its collections (of every tuple and list of the growing
    aggregates) took ~2% of the time.
    """
    partial = DayAggregate()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        read = 0
        for split in task:
            aggregate_split(rules, split, allow_corrupt, progress, into=partial)
            read += split.size
            if limit:
                limit.check(partial, read)
    finally:
        if was_enabled:
            gc.enable()
    return partial


def _run_task(task: list[Split], allow_corrupt: bool) -> DayAggregate:
    if _worker["queue"] is None:
        return aggregate_task(_worker["rules"], task, allow_corrupt, limit=_worker["limit"])
    try:
        return aggregate_task(_worker["rules"], task, allow_corrupt, _report_progress, _worker["limit"])
    finally:
        _send_progress()  # the task's last bytes


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
    """Aggregate every split of a day; raises CorruptInput unless ``allow_corrupt``,
    EngineError when a worker process dies.

    ``prepare`` is called once while the workers read, after they have
    started: the caller's chance to get ready for what follows (the job
    imports its Parquet writer there) without delaying them or forking it
    into them.

    Raises ``TooManyAggregates`` as soon as a task's partial, or the partials
    merged, hold more distinct aggregates than the configuration allows
    (``aggregate.aggregate_limit``).
    """
    tasks = plan_tasks(splits)
    workers = min(workers or default_workers(), len(tasks)) or 1
    total = DayAggregate()
    limit = Limit.of(config, sum(split.size for split in splits))
    merged_bytes = 0

    def merge(index: int, partial: DayAggregate) -> None:
        nonlocal merged_bytes
        total.merge(partial)
        merged_bytes += sum(split.size for split in tasks[index])
        limit.check(total, merged_bytes)

    if workers == 1:
        keep_freed_memory()
        if prepare:
            prepare()
        rules = PingRules(config, day)
        for index, task in enumerate(tasks):
            merge(index, aggregate_task(rules, task, allow_corrupt, progress, limit))
        return total

    # Forking a parent whose store already runs an I/O thread (S3's event
    # loop) can kill the child: such splits get freshly spawned workers.
    fork_safe = all(store_for(split.file.path).fork_safe for split in splits)
    fork = "fork" in mp.get_all_start_methods() and fork_safe
    ctx = mp.get_context("fork" if fork else "spawn")
    progress_queue = ctx.Queue() if progress else None
    done: dict[int, DayAggregate] = {}
    next_index = 0
    with (
        _worker_deaths(),
        ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(config, day, progress_queue, limit)
        ) as pool,
    ):
        # Frozen while the first submit forks the workers: their collections
        # then leave the objects they inherit alone, so those pages stay
        # shared instead of being copied on write.
        gc.freeze()
        try:
            pending = {pool.submit(_run_task, task, allow_corrupt): i for i, task in enumerate(tasks)}
        finally:
            gc.unfreeze()
        try:
            if prepare:  # the pool has started its processes on the first submits
                prepare()
            while pending:
                finished, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, progress)
                for future in finished:
                    done[pending.pop(future)] = future.result()
                # Merge in task order, as soon as the next partial is there.
                while next_index in done:
                    merge(next_index, done.pop(next_index))
                    next_index += 1
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            _drain(progress_queue, progress)
    return total


@contextmanager
def _worker_deaths() -> Iterator[None]:
    """A worker that died (killed, out of memory) fails the date in one line: an EngineError."""
    try:
        yield
    except BrokenProcessPool:
        raise EngineError("a worker process died (killed, or out of memory?)") from None


def _drain(progress_queue, progress: ProgressFn | None) -> None:
    while progress_queue is not None:
        try:
            nbytes, pings = progress_queue.get_nowait()
        except queue.Empty:
            return
        if progress:
            progress(nbytes, pings)


class EmbeddedEngine:
    """Local worker processes: as many as asked for (``--workers``), else one per core."""

    name = "embedded"
    aggregate_day = staticmethod(aggregate_day)

    def start(self, workers: int | None = None, master: str | None = None) -> int:
        return workers or default_workers()


ENGINE = EmbeddedEngine()
