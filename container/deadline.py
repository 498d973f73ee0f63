"""Deadlines on time.monotonic(): a dataset's own (DATASET_TIMEOUT) and the job's (JOB_TIMEOUT less
`job_margin`, or "now" once Batch sends SIGTERM). A dataset stops at the earlier of the two.

The job's deadline can move while datasets wait on it (SIGTERM brings it forward), so a wait
bounded by a `Deadline` waits in slices of at most POLL seconds and looks again after each one,
instead of sleeping until the instant it was given when it started.

Why the job needs its own deadline: AWS Batch does not retry an attempt it ends for exceeding its
timeout (SIGTERM, then SIGKILL ~30 s later). Stopping a margin before it, the job aborts its
uploads, prints its summary and exits 1, which Batch does retry; the retry skips what is stored.
"""

from __future__ import annotations

import math
import time
from typing import Callable, TypeVar

from contract import JobEnv

T = TypeVar("T")

POLL = 0.5  # seconds: how soon a wait sees its deadline brought forward
# Seconds the job waits, once its deadline has passed, for the datasets still running to stop. Each
# stops within POLL at its next chunk or page wait (aborting its upload); one blocked in a request
# the deadline does not bound (metadata, a first page, S3) is reported and left behind: waiting on
# the portal it has no multipart upload open; stuck in S3 it may, and the bucket's lifecycle rule
# aborts that one.
STOP_GRACE = 10.0
# How long before Batch's time limit the job stops (`job_margin`): STOP_GRACE for the datasets to
# stop, a moment to print the summary, and the seconds the attempt's clock ran before Python did
# (container start, imports) fit in 20 s; 10 % of a longer limit leaves room for what cannot be
# measured here (an abort slow on S3, Batch's own clock); past 2 minutes a margin only shortens
# every attempt.
JOB_MARGIN_MIN, JOB_MARGIN_SHARE, JOB_MARGIN_MAX = 20.0, 0.10, 120.0
SIGTERM_REACHED = "the job was stopped (SIGTERM)"


class DeadlineExceeded(Exception):
    """A dataset reached its deadline or the job's; the message says which, and where."""


class Deadline:
    """An instant on time.monotonic() and what reaching it means ("the dataset deadline (1800 s)
    passed"), bound also by `within` (the job's deadline) when that one comes first.

    `bring_forward` may run in a signal handler while other threads read: the instant and its
    words are one tuple, swapped in one assignment (no lock, so no deadlock with a reader)."""

    def __init__(self, at: float = math.inf, reached: str = "the deadline passed",
                 within: Deadline | None = None) -> None:
        self._limit = (at, reached)
        self._within = within

    def limit(self) -> tuple[float, str]:
        """(instant, words) of whichever deadline comes first."""
        own = self._limit
        outer = self._within.limit() if self._within is not None else own
        return outer if outer[0] < own[0] else own

    @property
    def at(self) -> float:
        return self.limit()[0]

    @property
    def reached(self) -> str:
        return self.limit()[1]

    def passed(self) -> bool:
        return time.monotonic() > self.at

    def bring_forward(self, at: float, reached: str) -> None:
        """Moves this deadline to `at` if that is earlier (SIGTERM: now)."""
        if at < self._limit[0]:
            self._limit = (at, reached)

    def exceeded(self, doing: str = "") -> DeadlineExceeded:
        """The error to raise: what was reached, and while doing what."""
        return DeadlineExceeded(f"{self.reached} {doing}".strip())

    def wait(self, get: Callable[[float], T], timed_out: type[Exception]) -> T:
        """`get(timeout)` (a queue's get, a future's exception) until it answers, `POLL` seconds at
        most at a time; re-raises `timed_out` once this deadline has passed (wherever it moved).
        `get` must raise `timed_out` only when its own wait ran out."""
        while True:
            left = self.at - time.monotonic()
            try:
                return get(min(max(left, 0.0), POLL))
            except timed_out:
                if left <= 0:
                    raise


def job_margin(job_timeout: float) -> float:
    """Seconds before Batch's time limit at which the job stops (see JOB_MARGIN_*)."""
    return min(max(JOB_MARGIN_MIN, JOB_MARGIN_SHARE * job_timeout), JOB_MARGIN_MAX)


def job_deadline(job_timeout: float, started: float) -> Deadline:
    """The job's deadline: `started` + JOB_TIMEOUT - margin; none when JOB_TIMEOUT is 0 (SIGTERM
    can still bring it forward)."""
    if not job_timeout:
        return Deadline()
    return Deadline(started + job_timeout - job_margin(job_timeout),
                    f"the job's time limit ({JobEnv.JOB_TIMEOUT}={job_timeout:g} s) was reached")
