"""Deadlines: a dataset's bounded by the job's, the job's brought forward (SIGTERM) while a wait is
on, and the job's margin before Batch's time limit."""

from __future__ import annotations

import math
import queue
import threading
import time

import pytest

from container.deadline import (JOB_MARGIN_MIN, POLL, SIGTERM_REACHED, STOP_GRACE, Deadline, DeadlineExceeded,
                                job_deadline, job_margin)


def test_a_dataset_deadline_is_the_earlier_of_its_own_and_the_jobs_with_the_words_of_that_one():
    job = Deadline(100.0, "the job's time limit was reached")

    assert Deadline(50.0, "the dataset deadline passed", within=job).limit() == (50.0, "the dataset deadline passed")
    assert Deadline(150.0, "the dataset deadline passed", within=job).limit() == (
        100.0, "the job's time limit was reached")
    assert Deadline(150.0, within=None).at == 150.0


def test_bringing_the_job_deadline_forward_reaches_every_dataset_deadline_within_it_but_never_delays_it():
    job = Deadline(100.0, "the job's time limit was reached")
    dataset = Deadline(1000.0, "the dataset deadline passed", within=job)

    job.bring_forward(10.0, SIGTERM_REACHED)
    job.bring_forward(20.0, "later: ignored")

    assert dataset.limit() == (10.0, SIGTERM_REACHED)
    assert str(dataset.exceeded("while downloading")) == f"{SIGTERM_REACHED} while downloading"
    assert str(dataset.exceeded()) == SIGTERM_REACHED


def test_a_wait_sees_its_deadline_brought_forward_within_a_poll():
    # Bounded by a deadline an hour away, the wait must still end soon after SIGTERM brings it forward.
    job = Deadline(time.monotonic() + 3600, "the job's time limit was reached")
    never: queue.Queue = queue.Queue()
    threading.Timer(0.2, job.bring_forward, (time.monotonic(), SIGTERM_REACHED)).start()

    began = time.monotonic()
    with pytest.raises(queue.Empty):
        job.wait(lambda timeout: never.get(timeout=timeout), queue.Empty)

    assert time.monotonic() - began < 0.2 + POLL + 0.5


def test_a_wait_returns_what_arrives_before_the_deadline():
    answers: queue.Queue = queue.Queue()
    threading.Timer(0.6, answers.put, ("page",)).start()  # after more than one POLL

    assert Deadline(time.monotonic() + 5).wait(lambda timeout: answers.get(timeout=timeout), queue.Empty) == "page"


def test_a_wait_still_takes_what_is_there_once_the_deadline_passed():
    ready: queue.Queue = queue.Queue()
    ready.put("chunk")

    assert Deadline(0.0).wait(lambda timeout: ready.get(timeout=timeout), queue.Empty) == "chunk"


@pytest.mark.parametrize(("job_timeout", "margin"), [(60, 20.0), (300, 30.0), (1200, 120.0), (14400, 120.0)])
def test_the_margin_leaves_the_job_time_to_stop_before_batchs_sigterm(job_timeout, margin):
    assert job_margin(job_timeout) == margin
    # The running datasets get STOP_GRACE to stop, and the summary still comes before Batch's limit.
    assert job_margin(job_timeout) >= JOB_MARGIN_MIN > STOP_GRACE


def test_the_job_deadline_is_its_start_plus_job_timeout_less_the_margin_and_names_the_setting():
    deadline = job_deadline(300, started=1000.0)

    assert deadline.at == 1000.0 + 300 - 30
    assert str(deadline.exceeded()) == "the job's time limit (JOB_TIMEOUT=300 s) was reached"


def test_without_job_timeout_the_job_has_no_deadline_until_sigterm():
    deadline = job_deadline(0, started=1000.0)
    assert deadline.at == math.inf and not deadline.passed()

    deadline.bring_forward(time.monotonic() - 1, SIGTERM_REACHED)

    assert deadline.passed()
    assert isinstance(deadline.exceeded(), DeadlineExceeded)
