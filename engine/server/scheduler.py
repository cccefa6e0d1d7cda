"""One loaded model serving many requests: a thread that decodes them side by side.

Requests wait in a queue that is fair between clients (round robin over the ``user`` of each
request, so one program sending a hundred requests does not shut out another). Between two
decode steps the thread admits waiting requests into free batch slots and drops those whose
client went away, so a disconnect frees its slot at once (``engine.batch.ContinuousBatch``).
A model whose graph cannot batch (an LSTM, a foreign export, a GPU session) runs its requests
one at a time through ``engine.generation`` instead, with the same queue.

The thread owns the model's ONNX Runtime session; the HTTP side only tokenizes (read-only
tokenizer) and receives :data:`Event`s through the ``emit`` callback of its job, which must be
safe to call from this thread (the app posts them to its event loop).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.batch import (
    BatchDecoder,
    BatchRequest,
    BatchResult,
    ContinuousBatch,
    batchable,
    fitting_slots,
)
from engine.detokenize import TextAssembler
from engine.errors import EngineError, OperationCancelledError
from engine.generation import GenerationConfig, generate_from_ids
from engine.model import Model
from engine.sampling import SamplingSettings

logger = logging.getLogger(__name__)
MAX_WAITING = 256  # queued requests per model; more are refused (HTTP 429)


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Done:
    finish_reason: str  # "stop", "length" or "cancelled"
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Failed:
    message: str


Event = Delta | Done | Failed


@dataclass
class Job:
    """One request's prompt and limits, and where its events go."""

    prompt_ids: list[int]
    max_new_tokens: int
    sampling: SamplingSettings
    stop: tuple[str, ...]
    emit: Callable[[Event], None]
    client: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)


class QueueFullError(Exception):
    """The model has :data:`MAX_WAITING` requests waiting already."""


class FairQueue:
    """Jobs by client, served round robin; not thread-safe (the scheduler holds its lock)."""

    def __init__(self) -> None:
        self._by_client: OrderedDict[str, deque[Job]] = OrderedDict()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def push(self, job: Job) -> None:
        self._by_client.setdefault(job.client, deque()).append(job)
        self._count += 1

    def pop(self) -> Job:
        client, jobs = next(iter(self._by_client.items()))
        job = jobs.popleft()
        self._count -= 1
        if jobs:
            self._by_client.move_to_end(client)  # that client's next job waits its turn
        else:
            del self._by_client[client]
        return job


class ModelScheduler:
    """The thread that runs every request on ``model``.

    Args:
        model: a loaded decoder; only this scheduler's thread runs its session from now on.
        slots: sequences decoded side by side (fewer when their caches would not fit memory).
        capacity: positions per sequence (prompt + answer), at most the model's context.
    """

    def __init__(self, model: Model, slots: int, capacity: int) -> None:
        self.model = model
        self.capacity = min(capacity, model.manifest.context_length)
        self.batched = batchable(model) and slots > 1
        self.slots = fitting_slots(model, slots, self.capacity) if self.batched else 1
        self._queue = FairQueue()
        self._lock = threading.Condition()
        self._closed = False
        self._taken: dict[int, Job] = {}  # jobs taken from the queue and not yet done, by id
        self.finished: Counter[str] = Counter()  # jobs ended, by finish reason ("failed" too)
        self._thread = threading.Thread(target=self._run, name=f"serve-{model.name}",
                                        daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._queue and not self._taken

    def submit(self, job: Job) -> None:
        """Queues ``job``; raises QueueFullError when too many wait already."""
        with self._lock:
            if self._closed:
                raise QueueFullError(f"{self.model.name} is shutting down")
            if len(self._queue) >= MAX_WAITING:
                raise QueueFullError(f"{len(self._queue)} requests are waiting for "
                                f"{self.model.name} already")
            self._queue.push(job)
            self._lock.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Cancels what runs and waits, ends the thread."""
        with self._lock:
            self._closed = True
            while self._queue:
                job = self._queue.pop()
                _emit(job, Done("cancelled", len(job.prompt_ids), 0))
            self._lock.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # --- the scheduler thread -------------------------------------------------------------

    def _take(self, room: int, wait: bool) -> list[Job] | None:
        """Up to ``room`` waiting jobs (blocking for one when ``wait``); None once closed."""
        with self._lock:
            while wait and not self._queue and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            jobs = [self._queue.pop() for _ in range(min(room, len(self._queue)))]
            self._taken.update((id(job), job) for job in jobs)
            return jobs

    def _done(self, job: Job, event: Event) -> None:
        with self._lock:
            self._taken.pop(id(job), None)
            self.finished[event.finish_reason if isinstance(event, Done) else "failed"] += 1
        _emit(job, event)

    def _run(self) -> None:
        try:
            if self.batched:
                self._run_batched()
            else:
                self._run_serial()
        except Exception:  # a bug must not leave clients waiting forever
            logger.exception("the scheduler of %s stopped", self.model.name)
            with self._lock:
                self._closed = True
            for job in list(self._taken.values()):
                self._done(job, Failed(f"the server failed while running {self.model.name}; "
                                       "see its log"))
            self.close(timeout=0)

    def _run_serial(self) -> None:
        while (jobs := self._take(1, wait=True)) is not None:
            for job in jobs:
                self._done(job, self._generate_one(job))

    def _generate_one(self, job: Job) -> Event:
        config = GenerationConfig(max_new_tokens=job.max_new_tokens, sampling=job.sampling,
                                  stop_strings=job.stop)
        try:
            for chunk in generate_from_ids(self.model, job.prompt_ids, config,
                                           job.cancelled.is_set):
                if chunk.text:
                    _emit(job, Delta(chunk.text))
                if chunk.stats is not None:
                    return Done(chunk.finish_reason or "stop", chunk.stats.prompt_tokens,
                                chunk.stats.completion_tokens)
        except EngineError as error:
            return Failed(str(error))
        return Done("stop", len(job.prompt_ids), 0)

    def _run_batched(self) -> None:
        running: dict[int, tuple[Job, TextAssembler]] = {}
        next_key = 0

        def on_token(key: int, token: int) -> None:
            job, assembler = running[key]
            text = assembler.push(token)
            if text:
                _emit(job, Delta(text))

        def on_finish(key: int, result: BatchResult) -> None:
            job, assembler = running.pop(key)
            if result.finish_reason != "cancelled":
                tail = assembler.finish()
                if tail:
                    _emit(job, Delta(tail))
            self._done(job, Done(result.finish_reason, len(job.prompt_ids),
                                 len(result.token_ids)))

        def fresh_batch() -> ContinuousBatch:
            return ContinuousBatch(BatchDecoder(self.model, self.slots, self.capacity),
                                   on_token, lambda key, _: running[key][1].stopped, on_finish)

        batch = fresh_batch()
        while True:
            jobs = self._take(self.slots - batch.active, wait=not batch.active)
            if jobs is None:
                break
            for job in jobs:
                key, next_key = next_key, next_key + 1
                running[key] = (job, TextAssembler(self.model.tokenizer.decode, job.prompt_ids,
                                                   job.stop))
                request = BatchRequest(job.prompt_ids, job.max_new_tokens, job.sampling)
                try:
                    batch.admit(key, request, job.cancelled.is_set)
                except OperationCancelledError:
                    del running[key]
                    self._done(job, Done("cancelled", len(job.prompt_ids), 0))
                except EngineError as error:
                    del running[key]
                    self._done(job, Failed(str(error)))
            for key, (job, _) in list(running.items()):
                if job.cancelled.is_set():
                    batch.drop(key)
            try:
                batch.step()
            except EngineError as error:  # the step failed for every row: start afresh
                for key in list(running):
                    job, _ = running.pop(key)
                    self._done(job, Failed(str(error)))
                batch = fresh_batch()
        for job, _ in running.values():
            self._done(job, Done("cancelled", len(job.prompt_ids), 0))


def _emit(job: Job, event: Event) -> None:
    try:
        job.emit(event)
    except Exception:  # the receiving side is gone (its loop closed): nothing to tell
        logger.debug("an event for a finished request was dropped", exc_info=True)
