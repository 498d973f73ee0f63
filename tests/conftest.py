"""Settings for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _without_the_hosts_aws_settings() -> Iterator[None]:
    """No test sees the developer's AWS set-up (a profile that does not exist here, an endpoint, keys):
    each test and fixture sets what it needs, and nothing reaches a real account."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("AWS_")]:
            patch.delenv(name)
        yield
