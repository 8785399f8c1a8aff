"""Work in a forked process (`levekar.indicators.forks`): it sees this process's memory without pickling
it, hands back its result, and its errors surface here."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from levekar.indicators import forks

pytestmark = pytest.mark.skipif(not forks.can_fork(), reason="needs fork")


def test_forked_work_sees_unpicklable_state_and_returns_its_result():
    values = np.arange(1_000_000)
    lock = threading.Lock()  # cannot be pickled: the work must be inherited, not sent

    def work():
        with lock:
            return os.getpid(), int(values.sum())

    pid, total = forks.start(work)()
    assert pid != os.getpid() and total == int(values.sum())


def test_an_error_in_forked_work_is_raised_here():
    def work():
        raise ValueError("bad cell 17")

    result = forks.start(work)
    with pytest.raises(ValueError, match="bad cell 17"):
        result()


def test_forked_work_that_dies_is_an_error_not_a_hang():
    result = forks.start(lambda: os._exit(3))
    with pytest.raises(RuntimeError, match="exit code 3"):
        result()


def test_forked_map_gives_each_result_in_order_from_workers():
    lock = threading.Lock()  # cannot be pickled: the work must be inherited, not sent

    def work(item):
        with lock:
            return item * item, os.getpid()

    out = list(forks.map(work, range(7), workers=2))
    assert [square for square, _ in out] == [i * i for i in range(7)]
    assert os.getpid() not in {pid for _, pid in out}
    assert [pid for _, pid in forks.map(work, range(3), workers=1)] == [os.getpid()] * 3
