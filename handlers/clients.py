"""boto3 clients created on first use and cached for the life of the Lambda execution environment.

Lazy so that tests (and the local runner) can set the environment and moto up before any
client exists; `reset()` drops them between tests.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3


@lru_cache(maxsize=None)
def client(service: str) -> Any:
    return boto3.client(service)


def env(name: str) -> str:
    """A required setting; KeyError names the missing variable (a deployment bug: fail loudly)."""
    value = os.environ.get(name, "")
    if not value:
        raise KeyError(f"environment variable {name} is not set")
    return value


def reset() -> None:
    client.cache_clear()
