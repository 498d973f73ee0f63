"""The only module that knows sodapy: the portal's inventory, metadata and CSV pages.

sodapy (unmaintained since 2022) is kept behind `PortalClient` so it can be replaced. It reads
every response whole, so CSV data is streamed through its session (`client.session.get(...,
stream=True)`) instead of `get`. Retries live on the session's adapter (urllib3 `Retry`), so every
request, sodapy's and ours, gets the same backoff.
"""

from __future__ import annotations

import math
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata
from urllib3.util import Retry

from contract import split_domain

# 202: Socrata is still preparing the answer; 429: throttled (Retry-After honoured); 5xx: transient.
RETRY_STATUSES = (202, 429, 500, 502, 503, 504)
CONNECT_TIMEOUT = 10.0


class PortalError(Exception):
    """The portal did not answer what was asked; the message is the reason reported for the dataset."""


def build_retry(retries: int, retry_after_max: float, backoff_factor: float = 0.5,
                backoff_max: float = 30.0) -> Retry:
    """Exponential backoff with jitter on connection errors, read timeouts and RETRY_STATUSES.

    Bounded in count (`retries`) and in time: each wait is at most `backoff_max` + jitter, or the
    server's Retry-After capped at `retry_after_max`."""
    return Retry(
        total=retries, connect=retries, read=retries, status=retries, other=0, redirect=3,
        allowed_methods=frozenset({"GET", "HEAD"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor, backoff_max=backoff_max, backoff_jitter=backoff_factor,
        respect_retry_after_header=True, retry_after_max=math.ceil(retry_after_max),  # whole seconds
        # Hand back the last response instead of raising, so the reason names its status.
        raise_on_status=False,
    )


def _error_message(response: requests.Response) -> str:
    try:
        message = response.json().get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return f"HTTP {response.status_code} {response.reason or ''}".strip() + (f": {message}" if message else "")


class PortalClient:
    """A Socrata portal: `inventory_page`, `metadata`, `open_csv_page`. Thread-safe enough for a pool
    of `pool_size` workers (one requests Session, one connection pool per host, two connections
    per worker: a page and the next one, asked for ahead)."""

    def __init__(self, domain: str, app_token: str | None, *, timeout: float, retry: Retry,
                 pool_size: int = 4) -> None:
        self.prefix, self.host = split_domain(domain)
        self.timeout = timeout
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=2 * max(pool_size, 1))
        self._client = Socrata(self.host, app_token, timeout=timeout,
                               session_adapter={"prefix": self.prefix, "adapter": adapter})

    def close(self) -> None:
        self._client.close()

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        # sodapy raises requests errors, JSON errors and bare `Exception("Unknown response format")`
        # (an HTML page, say): all of them mean "the portal did not answer what was asked".
        try:
            return function(*args, **kwargs)
        except requests.HTTPError as error:
            response = error.response
            raise PortalError(f"{what}: {_error_message(response) if response is not None else error}") from None
        except requests.RequestException as error:
            raise PortalError(f"{what}: {type(error).__name__}: {error}") from None
        except Exception as error:  # noqa: BLE001 - see above
            raise PortalError(f"{what}: {type(error).__name__}: {error}") from None

    def inventory_page(self, inventory_id: str, *, where: str | None, order: str, limit: int,
                       offset: int) -> list[dict]:
        rows = self._call(f"inventory {inventory_id} at offset {offset}", self._client.get, inventory_id,
                          where=where, order=order, limit=limit, offset=offset)
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise PortalError(f"inventory {inventory_id}: the answer is not a JSON array of rows")
        return rows

    def metadata(self, dataset_id: str) -> dict:
        view = self._call("metadata", self._client.get_metadata, dataset_id)
        if not isinstance(view, dict):
            raise PortalError("metadata: the answer is not a JSON object")
        if view.get("id") != dataset_id:
            # sodapy hands back any JSON body, e.g. a 202 "still processing" answer once the
            # retries have run out: without this, the dataset would go out with no columns.
            detail = view.get("message") or f"its id is {view.get('id')!r}"
            raise PortalError(f"metadata: the answer is not the metadata of {dataset_id} ({detail})")
        return view

    def open_csv_page(self, dataset_id: str, *, offset: int, limit: int) -> requests.Response:
        """One page of `/resource/{id}.csv` as a streamed response, status and type checked; the
        caller closes it."""
        url = f"{self.prefix}{self.host}/resource/{dataset_id}.csv"
        params = {"$order": ":id", "$limit": str(limit), "$offset": str(offset)}
        what = f"page at offset {offset}"
        try:
            response = self._client.session.get(url, params=params, stream=True,
                                                 timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout))
        except requests.RequestException as error:
            raise PortalError(f"{what}: {type(error).__name__}: {error}") from None
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.status_code != 200:
            problem = _error_message(response)
        elif content_type == "text/html":
            problem = "the portal answered an HTML page instead of CSV"
        elif content_type not in ("text/csv", "application/csv", ""):
            problem = f"the portal answered {content_type!r} instead of CSV"
        elif response.raw.length_remaining is None and not response.raw.chunked:
            # A body that ends when the connection closes, cut right after a record, would look
            # like a complete last page: every page must declare its length or come chunked.
            problem = "the answer declares no length (no Content-Length, not chunked): a cut could not be detected"
        else:
            return response
        response.close()
        raise PortalError(f"{what}: {problem}")


def hang_up(response: requests.Response) -> None:
    """Shuts the read side of a streamed response's socket (urllib3's `shutdown`), so a read
    blocked on it in another thread (the read-ahead) returns at once: `close()` alone waits for
    that read, which a portal trickling bytes can make last for ever."""
    try:
        response.raw.shutdown()
    except (ValueError, RuntimeError, OSError):  # no socket, or released already: nothing blocks on it
        pass
