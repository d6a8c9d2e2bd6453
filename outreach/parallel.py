"""Long runs of pure work on both cores: a forked worker makes some of the results while this process makes the
others, and every result comes back in the order of its item.

Making letters is most of what queueing a campaign costs, and it is pure Python, held to one core by the
interpreter lock. `in_order` cuts the items into chunks; once there are two chunks, it forks a worker (Linux
only, and only when this process may run on a second core) and hands it up to two chunks at a time through a
pipe, making the other chunks itself meanwhile. The worker answers through a second pipe, which this process reads
between chunks of its own: no helper thread, as `concurrent.futures` would use, which took the interpreter lock
from the making and left the worker idle half the time (bench/README.md).

What the worker does not make, this process makes: an item whose making raised in the worker is made again here,
so that the error raised is the very one making it here raises, at the same item; a worker that died leaves its
chunks to this process. The worker inherits everything it needs by the fork (a compiled template, the
letterhead); only the items and the results cross the pipes, so both must be picklable.
"""

from __future__ import annotations

import gc
import os
import pickle
import select
import signal
import struct
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from itertools import chain, islice
from typing import Any, Generic, NoReturn, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")

CHUNK = 100  # items a chunk: about 30 ms of letters, small enough that neither side waits long for the other
_AHEAD = 2  # chunks the worker holds at once: one to make, one waiting, so that it never waits for this process
_LEAD = 8  # chunks read at most beyond the oldest the worker still makes: what waits in memory is bounded
STALL = 30.0  # seconds without a word from the worker before this process ends it and makes its chunks itself
_PIPE = 1 << 20  # bytes the answer pipe holds, where Linux allows (its default limit for a user)
_FRAME = struct.Struct("<Q")  # each message on a pipe: its length, then the pickle


class _Again:
    """What the worker answers for an item whose making raised: this process makes it again, and raises."""


class _Raised:
    """An item whose making raised here: the error waits for the item's turn."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def second_core() -> bool:
    """True when a forked worker could run beside this process: Linux, and two cores this process may use."""
    return sys.platform == "linux" and len(os.sched_getaffinity(0)) > 1


def in_order(make: Callable[[T], R], items: Iterable[T], *, local: Callable[[T], bool] = lambda item: False,
             chunk: int | None = None, worker: bool | None = None) -> Iterator[tuple[T, R]]:  # fmt: skip
    """Yield `(item, make(item))` for every item, in order, made here or by a forked worker.

    A chunk holding an item for which `local(item)` is true is made here (its making is cheap, or its item costly
    to send). `worker` None forks one when `second_core()` and there are at least two chunks, not all of them to be
    made here; False never does.
    An exception of `make` is raised here, when its item's turn comes, as making the items one by one would.
    """
    iterator, size = iter(items), chunk or CHUNK
    chunks = iter(lambda: list(islice(iterator, size)), [])
    started = list(islice(chunks, 2))
    helper = None
    # A worker for two chunks or more, unless every item so far is to be made here: then likely all are (a queue
    # taking the letters its look made).
    needed = len(started) == 2 and not all(local(item) for part in started for item in part)
    if needed and (second_core() if worker is None else worker):
        try:
            helper = _Worker(make)
        except OSError:  # no fork to be had (memory, process limit): one core, as before
            helper = None
    if helper is None:
        for part in chain(started, chunks):  # as they come: the items may be a stream of a million contacts
            yield from ((item, make(item)) for item in part)
        return
    with helper:
        yield from helper.run(started, chunks, local)


def _made_here(make: Callable[[T], R], part: list[T]) -> list[Any]:
    """A chunk's results, made here; an error ends it, and waits for its item's turn."""
    results: list[Any] = []
    for item in part:
        try:
            results.append(make(item))
        except Exception as error:
            results.append(_Raised(error))
            break
    return results


def _results(part: list[T], results: list[Any]) -> Iterator[tuple[T, Any]]:
    """Each item of a chunk with its result, in order; an item whose making raised raises now."""
    for item, result in zip(part, results, strict=False):  # a chunk that raised ends at its error
        if isinstance(result, _Raised):
            raise result.error
        yield item, result


class _Worker(Generic[T, R]):
    """The forked worker, and this process's ends of the two pipes: orders to it, answers from it."""

    def __init__(self, make: Callable[[T], R]) -> None:
        orders_read, self._orders = os.pipe()
        self._answers, answers_write = os.pipe()
        import fcntl  # here: a worker is forked on Linux only, and Windows has no fcntl

        with suppress(OSError):  # a larger pipe: fewer turns for the two processes to pass a chunk of letters
            fcntl.fcntl(answers_write, fcntl.F_SETPIPE_SZ, _PIPE)
        gc.freeze()  # the worker never collects, and so never finalizes, what it inherited (a database connection)
        try:
            with warnings.catch_warnings():
                # Python 3.12 warns of a fork beside other threads (a progress bar's, a scheduler's): a lock one of
                # them held would stay held in the worker. The worker only makes what `make` makes, with nothing
                # those threads hold, and ends with os._exit.
                warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
                self._pid = os.fork()
        except OSError:
            gc.unfreeze()
            for fd in (orders_read, self._orders, self._answers, answers_write):
                os.close(fd)
            raise
        if self._pid == 0:
            os.close(self._orders)
            os.close(self._answers)
            _serve(make, orders_read, answers_write)  # never returns
        gc.unfreeze()
        os.close(orders_read)
        os.close(answers_write)
        # Written without blocking: a write that waited for room while the worker waited for its answer to be read
        # would wait for good; `_send` reads answers between writes instead.
        os.set_blocking(self._orders, False)
        self._make = make
        self._inbox = bytearray()
        self._alive = True

    def __enter__(self) -> _Worker[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the pipes and end the worker: done, or left early (an error, Ctrl-C), nothing it makes is wanted."""
        for fd in (self._orders, self._answers):
            os.close(fd)
        with suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        os.waitpid(self._pid, 0)

    def run(self, started: list[list[T]], chunks: Iterator[list[T]],
            local: Callable[[T], bool]) -> Iterator[tuple[T, R]]:  # fmt: skip
        """Yield every item of the chunks with its result, in order: the worker makes what it is handed (up to
        `_AHEAD` chunks at once), this process the rest, with the same `make`."""
        make = self._make
        queue: deque[tuple[list[T], list[Any] | None]] = deque()  # the chunks in order, with results once made
        handed = 0  # chunks at the worker

        def take(part: list[T]) -> None:
            nonlocal handed
            if self._alive and handed < _AHEAD and not any(local(item) for item in part) and self._send(part):
                queue.append((part, None))
                handed += 1
            else:
                queue.append((part, _made_here(make, part)))

        def receive(wait: bool) -> None:
            """Put the worker's answers with their chunks (its oldest first, as it answers in order)."""
            nonlocal handed
            while handed and (answer := self._receive(wait)) is not None:
                index = next(i for i, (_, results) in enumerate(queue) if results is None)
                part = queue[index][0]
                made = answer or [_Again()] * len(part)  # no answer to a chunk (never empty): the worker is gone
                again = [i for i, result in enumerate(made) if isinstance(result, _Again)]
                if again:  # made here, raising here as it would have
                    made = made[: again[0]] + _made_here(make, part[again[0] :])
                queue[index] = (part, made)
                handed -= 1
                wait = False

        for part in started:
            take(part)
        for part in chunks:
            receive(wait=len(queue) >= _LEAD)  # this far ahead of the worker: wait for it rather than read on
            take(part)
            while queue and queue[0][1] is not None:
                part, results = queue.popleft()
                yield from _results(part, results or [])
        while queue:
            receive(wait=queue[0][1] is None)
            while queue and queue[0][1] is not None:
                part, results = queue.popleft()
                yield from _results(part, results or [])

    def _send(self, part: list[T]) -> bool:
        """Hand the worker a chunk, reading its answers meanwhile (both pipes may be full at once); False when it
        cannot take it."""
        try:
            data = memoryview(_frame(pickle.dumps(part, pickle.HIGHEST_PROTOCOL)))
        except (pickle.PicklingError, TypeError, AttributeError):
            return False
        while data:
            readable, writable = self._ready(write=True, within=STALL)
            if not (readable or writable):
                self._stalled()
                return False
            if readable and not self._read():
                return False
            if writable:
                try:
                    data = data[os.write(self._orders, data) :]
                except BlockingIOError:  # room for less than the kernel writes at once: read, then write
                    continue
                except BrokenPipeError:
                    self._alive = False
                    return False
        return True

    def _receive(self, wait: bool) -> list[Any] | None:
        """The worker's next answer (an empty list once it is gone), or None when none is ready and not `wait`."""
        while True:
            if len(self._inbox) >= _FRAME.size:
                (length,) = _FRAME.unpack_from(self._inbox)
                if len(self._inbox) >= _FRAME.size + length:
                    answer = pickle.loads(self._inbox[_FRAME.size : _FRAME.size + length])
                    del self._inbox[: _FRAME.size + length]
                    return cast(list[Any], answer)
            if not self._alive:
                return []
            # An answer begun is read whole: the worker is writing it, and would wait for this process to read.
            if not wait and not self._inbox and not self._ready(write=False, within=0)[0]:
                return None
            self._read()

    def _ready(self, *, write: bool, within: float) -> tuple[bool, bool]:
        """Whether the worker's answers can be read, and (with `write`) its orders written, waiting at most `within`
        seconds for either (poll, not select: a descriptor past 1024 is fine)."""
        poller = select.poll()
        poller.register(self._answers, select.POLLIN)
        if write:
            poller.register(self._orders, select.POLLOUT)
        events = dict(poller.poll(within * 1000))
        # A worker gone shows as a hang-up (or an error): read it, and find the end of file.
        readable = bool(events.get(self._answers, 0) & (select.POLLIN | select.POLLHUP | select.POLLERR))
        return readable, bool(events.get(self._orders, 0) & (select.POLLOUT | select.POLLERR))

    def _stalled(self) -> None:
        """End a worker that has neither read nor written for STALL seconds: stuck, it would hold up the command
        for good (a lock another thread held at the fork stays held in the worker). Its chunks are made here."""
        self._alive = False
        with suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)

    def _read(self) -> bool:
        """Read what the worker wrote; False when it is gone (end of file), or silent for STALL seconds."""
        if not self._ready(write=False, within=STALL)[0]:
            self._stalled()
            return False
        data = os.read(self._answers, 1 << 20)
        self._inbox += data
        self._alive = self._alive and bool(data)
        return bool(data)


def _frame(data: bytes) -> bytes:
    return _FRAME.pack(len(data)) + data


def _serve(make: Callable[[Any], Any], orders: int, answers: int) -> NoReturn:
    """The worker: make each chunk it is handed and answer with the results, until the order pipe closes. It ends
    with os._exit: nothing it inherited is cleaned up twice."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which ends the worker
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with os.fdopen(orders, "rb") as reader, os.fdopen(answers, "wb") as writer:
            while header := reader.read(_FRAME.size):
                part = pickle.loads(reader.read(_FRAME.unpack(header)[0]))
                results: list[Any] = []
                for item in part:
                    try:
                        results.append(make(item))
                    except Exception:
                        results.append(_Again())
                try:
                    data = pickle.dumps(results, pickle.HIGHEST_PROTOCOL)
                except Exception:
                    data = pickle.dumps([_Again()] * len(part), pickle.HIGHEST_PROTOCOL)
                writer.write(_frame(data))
                writer.flush()
    except BaseException:
        code = 1
    finally:
        os._exit(code)
