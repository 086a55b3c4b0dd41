"""``HttpTrafficDriver``: the ``TrafficDriver`` port over plain HTTP, for any platform.

A deployment in a quiet environment sends its own requests through the environment's
*main* route (the local router's listener, or the ALB's ``aws.url``) while an analysis
window is open; the router's weights split them between the two slots, so the new
release and the stable one are judged on the same requests.

What is sent: ``traffic_requests()`` — a Lambda function's ``smoke_events``, or a GET of
an ECS service's route prefix (``/orders*`` -> ``GET /orders``), the service's own read
path, which a bad release fails like any other request (health paths are not used: the
example apps never fault them, so they would hide a bad release).

Counting is honest: the driver counts only answers it received (and the 5xx among them,
which a platform metric may miss: Lambda counts function errors, not a handler's own 500
answer), per whole second of the
wall clock (the local router's metric buckets), by the response header that names what
answered: ``X-Pipeline-Slot`` from the local router's ECS routes, or ``X-Lambda-Version``
from the local Lambda runtime (``label_of`` maps a slot to the version it runs). Where
no answer names one (an ALB), ``sent()`` returns None and the verdict claims no
synthetic share.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipeline.core.model import Slot
from pipeline.core.ports import SyntheticCount
from pipeline.loadtest.smoke import SmokeRequest, route_prefix

if TYPE_CHECKING:
    from pipeline.config import ServiceConfig

SLOT_HEADER = "X-Pipeline-Slot"
USER_AGENT = "pipeline-synthetic/1 (analysis evidence)"
RETENTION_SECONDS = 3600


def traffic_requests(route: str, smoke_events: Sequence[Mapping[str, Any]] = ()) -> tuple[SmokeRequest, ...]:
    """The requests a deployment sends for evidence (see the module docstring)."""
    prefix = route_prefix(route) or ""
    if smoke_events:
        return tuple(SmokeRequest.from_event(event, prefix or "/") for event in smoke_events)
    return (SmokeRequest("GET", prefix or "/"),)


def service_traffic(
    base_url: str,
    service: ServiceConfig,
    *,
    label_header: str = SLOT_HEADER,
    label_of: Callable[[Slot], str | None] | None = None,
) -> HttpTrafficDriver:
    """The driver that feeds ``service``'s analysis through the main route at ``base_url``."""
    events = service.lambda_.smoke_events if service.lambda_ is not None else ()
    requests = traffic_requests(service.route.path, events)
    return HttpTrafficDriver(base_url, requests, label_header=label_header, label_of=label_of)


class HttpTrafficDriver:
    """Sends ``requests`` round-robin to ``base_url`` at the rate asked by ``drive()``.

    ``concurrency`` worker threads send; a ticker thread releases one request every
    ``1 / rate`` seconds and skips tickets while every worker is busy (a slow release
    gets fewer requests, never a growing backlog). ``now`` is the wall clock the
    counters use (epoch seconds), the same clock as the router's metrics. Answers are
    counted by the value of ``label_header``; ``label_of(slot)`` is the value that names
    ``slot`` (default: the slot's name).
    """

    def __init__(
        self,
        base_url: str,
        requests: Sequence[SmokeRequest],
        *,
        concurrency: int = 4,
        timeout: float = 5.0,
        now: Callable[[], float] = time.time,
        label_header: str = SLOT_HEADER,
        label_of: Callable[[Slot], str | None] | None = None,
    ) -> None:
        if not requests:
            raise ValueError("HttpTrafficDriver needs at least one request to send")
        self.base_url = base_url.rstrip("/")
        self.requests = tuple(requests)
        self.concurrency = concurrency
        self.timeout = timeout
        self._now = now
        self.label_header = label_header
        self._label_of = label_of or _slot_name
        self._rate = 0.0
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, int, bool]] = Counter()  # (label, second, 5xx)
        self._unnamed = 0  # answers that did not say which slot answered
        self._tickets: queue.Queue[int | None] = queue.Queue(maxsize=concurrency)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- the port --------------------------------------------------------------------

    def drive(self, rate: float) -> None:
        """Send about ``rate`` requests per second until ``stop()``; changes a running rate."""
        if rate <= 0:
            self.stop()
            return
        with self._lock:
            self._rate = rate
        if not self._threads:
            self._start()

    def stop(self) -> None:
        """Stop the ticker and the workers; returns once requests in flight ended."""
        if not self._threads:
            return
        self._stopping.set()
        ticker, *workers = self._threads
        ticker.join()
        for _ in workers:
            self._tickets.put(None)  # after the tickets left: each worker ends on one
        for thread in workers:
            thread.join(self.timeout + 1.0)
        self._threads = []
        self._tickets = queue.Queue(maxsize=self.concurrency)
        self._stopping = threading.Event()

    def sent(self, slot: Slot, since: float, until: float) -> SyntheticCount | None:
        """Answers (and 5xx answers) from ``slot`` in the whole seconds overlapping
        ``[since, until]``; None when answers came but none named what answered."""
        first, last = math.floor(since), math.floor(until)
        label = self._label_of(slot)
        if label is None:
            return SyntheticCount(0)  # nothing runs in the slot: nothing of ours reached it
        requests = errors = 0
        with self._lock:
            for (name, second, failed), n in self._counts.items():
                if name == label and first <= second <= last:
                    requests += n
                    errors += n if failed else 0
            if requests == 0 and self._unnamed:
                return None
        return SyntheticCount(requests, errors)

    @property
    def total(self) -> int:
        """Every answer received so far (any slot, named or not)."""
        with self._lock:
            return sum(self._counts.values()) + self._unnamed

    # --- threads ---------------------------------------------------------------------

    def _start(self) -> None:
        self._threads = [threading.Thread(target=self._tick, name="synthetic-ticker", daemon=True)]
        for i in range(self.concurrency):
            self._threads.append(threading.Thread(target=self._work, name=f"synthetic-{i}", daemon=True))
        for thread in self._threads:
            thread.start()

    def _tick(self) -> None:
        n = 0
        next_at = time.monotonic()
        stopping = self._stopping
        while not stopping.is_set():
            with self._lock:
                interval = 1.0 / self._rate
            with contextlib.suppress(queue.Full):  # every worker busy: skip, build no backlog
                self._tickets.put_nowait(n)
            n += 1
            next_at = max(next_at + interval, time.monotonic() - interval)
            stopping.wait(max(0.0, next_at - time.monotonic()))

    def _work(self) -> None:
        tickets = self._tickets
        while True:
            ticket = tickets.get()
            if ticket is None:
                return
            self._send(self.requests[ticket % len(self.requests)])

    def _send(self, request: SmokeRequest) -> None:
        headers = {"User-Agent": USER_AGENT, **dict(request.headers)}
        http = urllib.request.Request(
            self.base_url + request.path, data=request.body or None, method=request.method, headers=headers
        )
        label: str | None
        try:
            with urllib.request.urlopen(http, timeout=self.timeout) as response:
                response.read()
                label, status = response.headers.get(self.label_header), response.status
        except urllib.error.HTTPError as exc:  # an answer all the same (4xx/5xx)
            exc.read()
            label, status = exc.headers.get(self.label_header), exc.code
        except (OSError, ValueError):
            return  # no answer: nothing reached a slot, nothing to count
        self._count(label, status >= 500, self._now())

    def _count(self, label: str | None, failed: bool, at: float) -> None:
        second = math.floor(at)
        with self._lock:
            if label:
                self._counts[(label, second, failed)] += 1
            else:
                self._unnamed += 1
            if len(self._counts) > 4 * RETENTION_SECONDS:
                for key in [k for k in self._counts if k[1] < second - RETENTION_SECONDS]:
                    del self._counts[key]


def _slot_name(slot: Slot) -> str:
    return slot.value
