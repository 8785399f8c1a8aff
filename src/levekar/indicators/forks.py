"""Work in processes forked from this one. A forked process inherits this one's memory, so its (large)
inputs are not pickled; only its result travels back. Used where a step is single-threaded and independent
of what runs beside it. Where there is no fork, the work runs in this process."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from typing import TypeVar

T = TypeVar("T")
_MAPPED: Callable | None = None  # `map`'s function, inherited by its workers instead of pickled


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def own_streams() -> None:
    """A forked process's own standard streams: a thread of the parent (a progress bar) may have held the
    inherited ones' locks at the fork, and the process flushes its streams when it exits. Forked work prints
    nothing."""
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (open for the process's life)


def start(work: Callable[[], T]) -> Callable[[], T]:
    """`work()` started in a forked process; returns a function that waits for its result (or raises its
    error). Without fork, `work` runs when its result is asked for. Start it while no other thread of this
    process is busy: a lock a thread holds at the fork stays held in the child."""
    if not can_fork():
        return work
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_run, args=(work, send), daemon=True)
    process.start()
    send.close()

    def result() -> T:
        try:
            ok, value = receive.recv()
        except EOFError:
            process.join()
            raise RuntimeError(f"forked work ended without a result (exit code {process.exitcode})") from None
        finally:
            receive.close()
        process.join()
        if not ok:
            raise value
        return value

    return result


def map(work: Callable[[int], T], items: Iterable[int], workers: int) -> Iterator[T]:
    """`work(item)` of each item, in order, on `workers` processes forked from this one (or here, for one
    worker or without fork). Only the items and the results are pickled; `work` and what it reads are
    inherited. As with `start`: no other thread of this process may be busy when it is called."""
    if workers < 2 or not can_fork():
        yield from (work(item) for item in items)
        return
    global _MAPPED
    _MAPPED = work
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=own_streams) as pool:
            yield from pool.map(_call_mapped, items)
    finally:
        _MAPPED = None


def _call_mapped(item: int) -> object:
    assert _MAPPED is not None
    return _MAPPED(item)


def _run(work: Callable[[], object], send: Connection) -> None:
    own_streams()
    try:
        out = (True, work())
    except BaseException as error:  # handed to the parent, which raises it
        out = (False, error)
    send.send(out)
    send.close()
