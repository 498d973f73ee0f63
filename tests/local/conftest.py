"""Fixtures for the local runner's tests: one emulator per test, on a free loopback port."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from components.config import PipelineConfig
from local.emulator import LocalAws


@pytest.fixture()
def local_aws() -> Iterator[LocalAws]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with LocalAws(PipelineConfig()) as aws:
        yield aws
