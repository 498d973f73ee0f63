"""The sodapy wrapper: URLs from SODA_DOMAIN, retries on connection errors, answers checked."""

from __future__ import annotations

import socket

import pytest

from container.portal_client import RETRY_STATUSES, PortalClient, PortalError, build_retry, split_domain


@pytest.mark.parametrize(("domain", "expected"), [
    ("www.datos.gov.co", ("https://", "www.datos.gov.co")),
    ("http://127.0.0.1:8081", ("http://", "127.0.0.1:8081")),
    ("https://data.example.org", ("https://", "data.example.org")),
])
def test_a_domain_with_a_scheme_is_used_as_given_and_a_bare_host_gets_https(domain, expected):
    assert split_domain(domain) == expected


def test_the_retry_policy_covers_throttling_and_transient_errors_with_bounded_waits():
    retry = build_retry(retries=4, retry_after_max=30)
    assert set(RETRY_STATUSES) == {202, 429, 500, 502, 503, 504} == set(retry.status_forcelist)
    assert (retry.total, retry.connect, retry.read, retry.status) == (4, 4, 4, 4)
    assert retry.respect_retry_after_header and retry.retry_after_max == 30
    assert retry.backoff_jitter > 0 and retry.backoff_max == 30


def test_a_fractional_retry_after_cap_rounds_up_not_to_zero():
    assert build_retry(retries=1, retry_after_max=0.5).retry_after_max == 1


def test_connection_errors_are_retried_then_reported(sleeps):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = PortalClient(f"http://127.0.0.1:{port}", None, timeout=2, retry=build_retry(3, 5, backoff_factor=0.01))

    with pytest.raises(PortalError, match="metadata: ConnectionError"):
        client.metadata("gt2j-8ykr")
    assert len(sleeps) == 2  # three retries: the first at once, then two backoffs


def test_an_http_error_is_reported_with_its_status(server):
    client = PortalClient(server.url, None, timeout=2, retry=build_retry(0, 1))
    with pytest.raises(PortalError, match="404"):
        client.metadata("zzzz-0000")
