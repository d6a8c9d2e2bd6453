"""Long runs of work on both cores: every result in the order of its item, as making them one by one gives; an
error raised at its item; a worker that dies or cannot be sent an item leaves its work to this process."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator

import pytest

from outreach import parallel
from outreach.parallel import in_order

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker is forked on Linux only")

PARENT = os.getpid()


def square(number: int) -> tuple[int, int, bool]:
    """The item, its square, and whether the worker made it."""
    return number, number * number, os.getpid() != PARENT


def test_results_come_in_order_and_the_worker_makes_a_share() -> None:
    made = list(in_order(square, range(1000), chunk=10, worker=True))
    assert [item for item, _ in made] == list(range(1000))
    assert all(result[:2] == (item, item * item) for item, result in made)
    assert any(result[2] for _, result in made), "the worker made none"
    assert list(in_order(square, range(1000), chunk=10, worker=False)) == [
        (item, (item, item * item, False)) for item in range(1000)
    ]


def test_no_worker_for_a_single_chunk() -> None:
    assert not any(result[2] for _, result in in_order(square, range(10), chunk=10, worker=True))


def test_an_error_is_raised_at_its_item_whoever_made_it() -> None:
    def fails_at_537(number: int) -> int:
        if number == 537:
            raise ValueError(f"no copy for {number} (made {'there' if os.getpid() != PARENT else 'here'})")
        return number

    for worker in (True, False):
        seen = []
        with pytest.raises(ValueError, match=r"^no copy for 537 \(made here\)$"):
            for item, _ in in_order(fails_at_537, range(1000), chunk=10, worker=worker):
                seen.append(item)
        assert seen == list(range(537)), "every item before it, and none after"


def test_a_worker_that_dies_leaves_its_chunks_to_this_process() -> None:
    def dies_there(number: int) -> tuple[int, bool]:
        if os.getpid() != PARENT:
            os._exit(3)  # as a worker killed by the system would end
        return number, False

    assert list(in_order(dies_there, range(1000), chunk=10, worker=True)) == [(n, (n, False)) for n in range(1000)]


def test_items_to_keep_here_and_items_that_cannot_be_sent_are_made_here(monkeypatch: pytest.MonkeyPatch) -> None:
    made = dict(in_order(square, range(200), chunk=10, worker=True, local=lambda number: number % 100 < 15))
    assert not any(made[number][2] for number in range(200) if number % 100 < 20), "chunks with one to keep here"
    assert any(made[number][2] for number in range(200)), "the worker made the others"

    class Unsendable:
        def __init__(self, number: int) -> None:
            self.number = number
            self.hook = lambda: number  # a lambda does not pickle

    def number_of(item: Unsendable) -> tuple[int, bool]:
        return item.number, os.getpid() != PARENT

    results = [result for _, result in in_order(number_of, map(Unsendable, range(100)), chunk=10, worker=True)]
    assert results == [(number, False) for number in range(100)]

    def no_fork(*args: object) -> None:
        raise AssertionError("a worker was forked for items all made here")

    monkeypatch.setattr(parallel._Worker, "__init__", no_fork)
    assert len(list(in_order(square, range(200), chunk=10, worker=True, local=lambda number: True))) == 200


def test_leaving_early_ends_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    workers: list[int] = []
    start = parallel._Worker.__init__

    def remembered(self: parallel._Worker[int, tuple[int, int, bool]], make: object) -> None:
        start(self, make)  # type: ignore[arg-type]
        workers.append(self._pid)

    monkeypatch.setattr(parallel._Worker, "__init__", remembered)
    made = in_order(square, range(1000), chunk=10, worker=True)
    assert next(made)[0] == 0
    made.close()
    assert workers
    with pytest.raises(ChildProcessError):
        os.waitpid(workers[0], os.WNOHANG)  # ended and reaped


def test_a_worker_stuck_is_ended_and_its_chunks_made_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "STALL", 0.3)

    def stuck_there(number: int) -> tuple[int, bool]:
        if os.getpid() != PARENT:
            time.sleep(600)  # as on a lock another thread held at the fork
        return number, False

    started = time.monotonic()
    assert list(in_order(stuck_there, range(100), chunk=10, worker=True)) == [(n, (n, False)) for n in range(100)]
    assert time.monotonic() - started < 10


def test_large_items_and_results_both_ways_never_leave_both_processes_writing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A chunk of orders larger than a pipe holds, sent while the worker writes an answer larger than its pipe holds:
    # each process must read the other's while it writes (a blocking write on both sides waited for good).
    monkeypatch.setattr(parallel, "_AHEAD", 4)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the two processes waited for each other"))
    signal.alarm(60)
    try:
        made = list(in_order(lambda item: item * 3, (bytes([n % 256]) * 200_000 for n in range(60)), chunk=10,
                             worker=True))  # fmt: skip
    finally:
        signal.alarm(0)
    assert [result for _, result in made] == [bytes([n % 256]) * 600_000 for n in range(60)]


def test_items_are_taken_as_they_are_needed_on_one_core_and_on_two() -> None:
    for worker in (False, True):
        taken: list[int] = []

        def counted(taken: list[int] = taken) -> Iterator[int]:
            for number in range(10_000):
                taken.append(number)
                yield number

        made = in_order(square, counted(), chunk=10, worker=worker)
        for _ in range(15):
            next(made)
        assert len(taken) <= 100, f"{len(taken)} items read ahead to make 15"
        made.close()
