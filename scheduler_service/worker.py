"""The scheduler's RQ worker: `rq worker --with-scheduler --worker-class
scheduler_service.worker.CallWorker --serializer rq.serializers.JSONSerializer scheduler`.

Why not a stock worker: RQ's scheduler keeps whole seconds and polls once a second, and a
stock worker runs one job at a time, so calls would fire up to ~2 s late and a burst of
calls due at one instant would be fired one after the other. Here:

- jobs reach the queue `SCHEDULER_HANDOFF_LEAD` seconds early; the job (`dispatch_call`)
  only hands its call to this process's dispatcher, which holds it in a heap;
- the dispatcher's timer thread sleeps until the earliest instant on Redis's clock, claims
  every call due then in one statement, and fires them on a thread pool, a few per
  destination at first and at most 8 at once (`FiringWindows`);
- a recorder thread stores outcomes in batches and hands retries back to RQ;
- a reconciler thread, at start and then periodically, recovers calls whose worker died
  and re-enqueues Pending calls RQ lost.

The worker is a `SimpleWorker` (no fork per job): the jobs are tiny, and the dispatcher's
threads must live as long as the process.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.process import BaseProcess
from typing import Any

from redis.exceptions import RedisError
from rq.defaults import DEFAULT_MAINTENANCE_TASK_INTERVAL
from rq.worker import SimpleWorker

from scheduler_service import jobs, metrics
from scheduler_service.execution import ClaimedCall
from scheduler_service.outbound import Outcome, UnsafeTarget, parse_destination
from scheduler_service.queueing import (
    mark_alive,
    mark_gone,
    mark_held,
    release_holds,
    take_reconcile_turn,
)
from scheduler_service.runner import CallRunner
from scheduler_service.timestamps import from_micros

log = logging.getLogger("flotilla.scheduler.worker")

RECORD_BATCH = 200
# While calls are being fired, recording waits (up to this long): firing on time comes first.
RECORD_DEFER = 1.0
MAINTENANCE_INTERVAL = 60  # RQ's default is 10 min; abandoned jobs are found sooner this way
IDLE_WAIT = 1.0
HEARTBEAT_SECONDS = 2.0  # how often a dispatcher says it is alive (its mark lives 3 times longer)
# Calls to one destination in flight when a burst starts; each answer lets one more in, up
# to SCHEDULER_HOST_CONCURRENCY. Once the first ones have answered, their connections are
# open: at most that many minus OPENING_AT_ONCE calls can then be opening one.
OPENING_AT_ONCE = 4
# Each such time a destination goes without a call ending, 4 more may go at once: one that
# neither answers nor refuses (connections time out) must not hold its calls past their lease.
OPENING_PATIENCE = 1.0


@dataclass
class Window:
    """The calls of one destination: how many may be in flight, are, and wait."""

    limit: int
    progress_at: float  # when it started, or when a call of it last ended
    in_flight: int = 0
    waiting: deque[tuple[ClaimedCall, float]] = field(default_factory=deque)  # and since when


class FiringWindows:
    """How many calls go to one destination at once, so that connections open a few at a time.

    A burst to one destination starts with `opening_at_once` calls in flight, and each answer
    lets one more in, up to `per_destination`: the calls reuse the connections already open,
    and at most a few are opening one at any time. Opening one connection per thread at the
    same instant overflows a small listen queue (Python's socketserver keeps 5), and the
    kernel tries a dropped connection attempt again only a second later. Each `patience`
    seconds in which none of a destination's calls ended lets `opening_at_once` more go, up
    to `ceiling` (the worker's threads); a call that waited `max_wait` seconds goes anyway
    (its lease runs from its claim). A destination with nothing in flight and nothing
    waiting is forgotten: its connections may be closed by the next burst, which starts
    small again.
    """

    def __init__(
        self,
        start: Callable[[ClaimedCall], None],
        *,
        per_destination: int,
        ceiling: int,
        opening_at_once: int = OPENING_AT_ONCE,
        max_wait: float,
        patience: float = OPENING_PATIENCE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._start = start
        self.ceiling = max(1, ceiling)
        self.per_destination = max(1, min(per_destination, self.ceiling))
        self.opening_at_once = max(1, min(opening_at_once, self.per_destination))
        self.max_wait = max_wait
        self.patience = patience
        self._clock = clock
        self._windows: dict[tuple[str, str, int], Window] = {}
        self._lock = threading.Lock()

    def admit(self, calls: list[ClaimedCall]) -> None:
        """Start each call now, or once its destination has room."""
        starting: list[ClaimedCall] = []
        now = self._clock()
        with self._lock:
            for call in calls:
                key = destination_of(call)
                window = self._windows.get(key)
                if window is None:
                    window = self._windows[key] = Window(self.opening_at_once, now)
                window.waiting.append((call, now))
                starting.extend(self._startable(window, now))
        for call in starting:
            self._start(call)

    def release_overdue(self) -> None:
        """Start the calls that destinations without progress may now send (called now and
        then)."""
        starting: list[ClaimedCall] = []
        now = self._clock()
        with self._lock:
            for window in self._windows.values():
                starting.extend(self._startable(window, now))
        for call in starting:
            self._start(call)

    def done(self, call: ClaimedCall, answered: bool) -> None:
        """One call of the destination ended; an answer lets one more in."""
        key = destination_of(call)
        now = self._clock()
        with self._lock:
            window = self._windows[key]
            window.progress_at = now
            window.in_flight -= 1
            if answered:
                window.limit = min(self.per_destination, window.limit + 1)
            starting = self._startable(window, now)
            if not window.in_flight and not window.waiting:
                del self._windows[key]
        for waiting in starting:
            self._start(waiting)

    def _startable(self, window: Window, now: float) -> list[ClaimedCall]:
        """Take the waiting calls that may start now (under the lock)."""
        stalls = int((now - window.progress_at) / self.patience)
        limit = min(self.ceiling, window.limit + stalls * self.opening_at_once)
        starting: list[ClaimedCall] = []
        while window.waiting and window.in_flight < self.ceiling:
            call, since = window.waiting[0]
            if window.in_flight >= limit and now - since < self.max_wait:
                break
            window.waiting.popleft()
            window.in_flight += 1
            starting.append(call)
        return starting


def destination_of(call: ClaimedCall) -> tuple[str, str, int]:
    """Where a call connects to; a URL that cannot be called is its own destination."""
    try:
        destination = parse_destination(call.request.url)
    except (UnsafeTarget, ValueError):
        return ("", call.request.url, 0)
    return (destination.scheme, destination.host, destination.port)


class Dispatcher:
    """Holds calls until their instant, then claims and fires them."""

    def __init__(self, runner: CallRunner) -> None:
        self.runner = runner
        self._heap: list[tuple[int, int]] = []  # (due in µs, call id)
        self._held: dict[int, int] = {}  # call id -> latest due held
        self._condition = threading.Condition()
        self._stopping = False
        self._results: queue.Queue[tuple[ClaimedCall, Outcome] | None] = queue.Queue()
        self._firing = 0
        self._quiet = threading.Event()  # set while no call is being fired
        self._quiet.set()
        self._firing_lock = threading.Lock()
        self._last_beat = 0.0
        self._pool = ThreadPoolExecutor(
            runner.settings.worker_threads, thread_name_prefix="scheduler-call"
        )
        self._windows = FiringWindows(
            self._submit,
            per_destination=runner.settings.host_concurrency,
            ceiling=runner.settings.worker_threads,
            # Started by then, a call ends before its lease does.
            max_wait=runner.settings.lease_grace / 2,
        )
        self._timer = threading.Thread(target=self._run_timer, name="scheduler-timer")
        self._recorder = threading.Thread(target=self._run_recorder, name="scheduler-recorder")

    def start(self) -> None:
        self.runner.clock.sync()
        self._beat()
        self._timer.start()
        self._recorder.start()

    def hold(self, call_id: int, due_us: int) -> None:
        """Keep the call until `due_us` (Redis clock); fire at once when it is past."""
        seconds_left = max(0.0, self.runner.clock.seconds_until(due_us / 1_000_000))
        mark_held(
            self.runner.connection,
            call_id,
            self.runner.worker,
            seconds_left + self.runner.settings.lease_grace,
        )
        with self._condition:
            heapq.heappush(self._heap, (due_us, call_id))
            self._held[call_id] = due_us
            self._condition.notify()

    def _beat(self) -> None:
        """Holds of this worker count while this mark lives (see queueing.py)."""
        try:
            mark_alive(self.runner.connection, self.runner.worker, 3 * HEARTBEAT_SECONDS)
            self._last_beat = time.monotonic()
        except RedisError:
            log.exception("could not renew the worker's alive mark")

    def _run_timer(self) -> None:
        while True:
            if time.monotonic() - self._last_beat >= HEARTBEAT_SECONDS:
                self._beat()
            self._windows.release_overdue()
            due = self._next_due()
            if due is None:
                return
            if not due:
                continue
            try:
                claimed = self.runner.claim(due)
            except Exception:  # this thread must outlive any failure, or nothing fires
                # Still Pending in the database: without their holds, the reconciler
                # hands them over again at its next pass.
                log.exception("could not claim due calls", extra={"calls": len(due)})
                self._release(due)
                continue
            with self._firing_lock:
                self._firing += len(claimed)
                if self._firing:
                    self._quiet.clear()
            self._windows.admit(claimed)

    def _next_due(self) -> list[int] | None:
        """The calls due now (empty after an idle wait); None once the dispatcher stops."""
        with self._condition:
            if self._stopping:
                return None
            if self._heap:
                wait = self.runner.clock.seconds_until(self._heap[0][0] / 1_000_000)
                if wait <= 0:
                    return self._pop_due()
                self._condition.wait(min(wait, IDLE_WAIT))
            else:
                self._condition.wait(IDLE_WAIT)
            return []

    def _pop_due(self) -> list[int]:
        now_us = int(self.runner.clock.now() * 1_000_000)
        due: list[int] = []
        while self._heap and self._heap[0][0] <= now_us:
            due_us, call_id = heapq.heappop(self._heap)
            if self._held.get(call_id) == due_us:
                del self._held[call_id]
            due.append(call_id)
        return list(dict.fromkeys(due))

    def _release(self, call_ids: list[int]) -> None:
        try:
            release_holds(self.runner.connection, call_ids)
        except RedisError:
            log.exception("could not release holds", extra={"calls": len(call_ids)})

    def _submit(self, call: ClaimedCall) -> None:
        self._pool.submit(self._fire, call)

    def _fire(self, call: ClaimedCall) -> None:
        answered = False
        try:
            try:
                outcome = self.runner.fire(call)
                answered = outcome.status_code is not None
            except Exception as exc:  # perform() reports failures; anything else is a bug
                log.exception("call failed unexpectedly", extra={"call_id": call.id})
                outcome = Outcome(time.time(), 0.0, error=repr(exc)[:500])
            self._results.put((call, outcome))
        finally:
            try:
                # The destination's waiting calls are submitted before this one stops
                # counting: `stop` shuts the pool down once no claimed call is left.
                self._windows.done(call, answered)
            finally:
                with self._firing_lock:
                    self._firing -= 1
                    if not self._firing:
                        self._quiet.set()

    def _run_recorder(self) -> None:
        while True:
            item = self._results.get()
            if item is None:
                return
            self._quiet.wait(RECORD_DEFER)
            batch = [item]
            while len(batch) < RECORD_BATCH:
                try:
                    more = self._results.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._record(batch)
                    return
                batch.append(more)
            self._record(batch)

    def _record(self, batch: list[tuple[ClaimedCall, Outcome]]) -> None:
        try:
            self.runner.record(batch)
        except Exception:  # this thread must outlive any failure
            # Left Running: the reconciler recovers them once their lease runs out.
            log.exception("could not record outcomes", extra={"calls": len(batch)})

    def stop(self) -> None:
        """Hand held calls back to RQ (another worker takes them), finish calls in flight."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._timer.join()
        held = [(call_id, from_micros(due_us)) for call_id, due_us in self._held.items()]
        if held:
            try:
                self.runner.hand_over(held)
                release_holds(self.runner.connection, [call_id for call_id, _due in held])
            except RedisError:
                log.exception("could not hand held calls back", extra={"calls": len(held)})
        # Calls waiting for their destination's window are fired too; past their lease the
        # reconciler would recover them anyway.
        self._quiet.wait(self.runner.settings.lease_seconds)
        self._pool.shutdown(wait=True)
        self._results.put(None)
        self._recorder.join()
        try:
            mark_gone(self.runner.connection, self.runner.worker)
        except RedisError:
            log.warning("could not remove the worker's alive mark")


class Reconciler:
    """At start, and then every interval: recover lost calls, re-enqueue forgotten ones; and,
    every interval in every worker, `keep_up` (the worker's own upkeep)."""

    def __init__(self, runner: CallRunner, keep_up: Callable[[], None] = lambda: None) -> None:
        self.runner = runner
        self.keep_up = keep_up
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler-reconciler")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        full = True  # the first pass looks at every Pending call, later ones at the near future
        while not self._stop.is_set():
            interval = self.runner.settings.reconcile_interval
            try:
                self.keep_up()
                if full or take_reconcile_turn(
                    self.runner.connection, self.runner.worker, interval * 0.9
                ):
                    self.reconcile(full)
                full = False
            except Exception:  # this thread must outlive any failure
                log.exception("reconciliation failed; trying again at the next interval")
            self._stop.wait(interval)

    def reconcile(self, full: bool) -> None:
        recovered = self.runner.recover_lost()
        window = None if full else timedelta(seconds=self.runner.settings.reconcile_window)
        handed = self.runner.enqueue_missing(None if window is None else self.runner.now() + window)
        if recovered or handed:
            log.warning(
                "reconciled the database with RQ",
                extra={"recovered": len(recovered), "re_enqueued": handed, "full": full},
            )


class CallWorker(SimpleWorker):
    """A SimpleWorker with the scheduler's dispatcher and reconciler."""

    log_result_lifespan = False  # results are never kept: one line less per job

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("maintenance_interval", DEFAULT_MAINTENANCE_TASK_INTERVAL) >= (
            DEFAULT_MAINTENANCE_TASK_INTERVAL
        ):
            kwargs["maintenance_interval"] = MAINTENANCE_INTERVAL
        super().__init__(*args, **kwargs)
        self.dispatcher: Dispatcher | None = None
        self.reconciler: Reconciler | None = None
        self._scheduler_lock = threading.Lock()

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        # Listening before the worker registers: once it is seen in RQ, it can be scraped.
        metrics.serve_metrics(self.connection, jobs.worker_settings().worker_metrics_bind or "")
        super().bootstrap(*args, **kwargs)
        runner = jobs.call_runner(self.connection, self.name)
        self.dispatcher = Dispatcher(runner)
        self.dispatcher.start()
        jobs.install_dispatcher(self.dispatcher)
        self.reconciler = Reconciler(runner, keep_up=self.restart_dead_scheduler)
        self.reconciler.start()

    def restart_dead_scheduler(self) -> None:
        """RQ's scheduler process (`--with-scheduler`) exits on its first Redis error (a
        failover, an outage), and RQ starts it again only between two dequeues, which an
        idle worker blocked in BLPOP may not reach for minutes: calls waiting in RQ's
        scheduled registry would wait that long. Taking its locks again starts it (another
        worker's scheduler may hold them: then that one moves the jobs)."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        with self._scheduler_lock:
            # RQ's own maintenance reads the same attribute to decide the same thing.
            process: BaseProcess | None = getattr(scheduler, "_process", None)
            if process is not None and process.is_alive():
                return
            log.warning("RQ's scheduler process is not running: starting it again")
            try:
                scheduler.acquire_locks(auto_start=True)  # type: ignore[no-untyped-call]
            except RedisError:
                log.warning("could not start RQ's scheduler again (Redis unavailable)")

    def teardown(self) -> None:
        if self.reconciler is not None:
            self.reconciler.stop()
        if self.dispatcher is not None:
            jobs.install_dispatcher(None)
            self.dispatcher.stop()
            self.dispatcher.runner.close()
        super().teardown()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
