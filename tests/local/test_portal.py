"""The local Socrata-compatible portal: routes, the SoQL subset, paging, faults, the snapshot."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import requests

from local.portal import SNAPSHOT_DIR, Fault, Portal, PortalServer, generated_dataset, inventory_row, load_snapshot


@pytest.fixture(scope="module")
def server():
    portal = load_snapshot()
    with PortalServer(portal) as server:
        yield server


def get(server: PortalServer, path: str, **params) -> requests.Response:
    return requests.get(server.url + path, params=params, timeout=5)


def test_metadata_is_served_as_stored(server):
    view = get(server, "/api/views/gt2j-8ykr.json").json()
    assert view["id"] == "gt2j-8ykr" and view["rowsUpdatedAt"] and view["columns"][0]["fieldName"]


def test_inventory_answers_the_soql_subset(server):
    rows = get(server, "/resource/uzcf-b9dh.json", **{
        "$select": "uid,name,type", "$where": "type='dataset' AND audience='public' AND publication_stage='published'",
        "$order": "uid", "$limit": "2", "$offset": "1"}).json()
    assert [r["uid"] for r in rows] == ["8ffd-q6x9:0", "9ssf-i6c5"]
    assert set(rows[0]) == {"uid", "name", "type"}
    picked = get(server, "/resource/uzcf-b9dh.json", **{"$where": "uid in ('jbjy-vk9h', 'gt2j-8ykr')"}).json()
    assert sorted(r["uid"] for r in picked) == ["gt2j-8ykr", "jbjy-vk9h"]


@pytest.mark.parametrize(("path", "params"), [
    ("/resource/uzcf-b9dh.json", {"$where": "type != 'chart'"}),
    ("/resource/uzcf-b9dh.json", {"$where": "type='dataset' OR audience='public'"}),
    ("/resource/uzcf-b9dh.json", {"$q": "covid"}),
    ("/resource/uzcf-b9dh.json", {"$order": "uid DESC"}),
    ("/resource/uzcf-b9dh.json", {"$limit": "-1"}),
    ("/resource/gt2j-8ykr.csv", {"$limit": "10"}),
    ("/resource/gt2j-8ykr.csv", {"$order": ":id", "$select": "edad"}),
    ("/resource/gt2j-8ykr.json", {}),
])
def test_queries_outside_the_supported_subset_answer_400(server, path, params):
    response = get(server, path, **params)
    assert response.status_code == 400 and response.json()["error"] is True


@pytest.mark.parametrize("params", [
    {"$select": "uid,no_such_column"}, {"$where": "no_such_column='x'"}, {"$order": "no_such_column"}])
def test_a_column_the_inventory_lacks_answers_400_no_such_column_as_socrata_does(server, params):
    # Socrata (SODA 2.1) answers 400 {"errorCode": "query.soql.no-such-column", "message": ...}
    # for a column the dataset does not have; only null values are left out of a JSON row.
    response = get(server, "/resource/uzcf-b9dh.json", **params)
    assert response.status_code == 400
    assert response.json()["errorCode"] == "query.soql.no-such-column"
    assert "No such column: no_such_column" in response.json()["message"]


def test_a_column_null_in_every_row_is_still_a_column_of_the_inventory():
    dataset = generated_dataset("gene-0003", 3)
    portal = Portal(inventory_columns=("uid", "name", "contact_email"))
    portal.add(dataset, {"uid": "gene-0003", "name": "n"})  # contact_email null: left out of the row
    with PortalServer(portal) as server:
        rows = get(server, "/resource/uzcf-b9dh.json", **{"$select": "uid,contact_email"}).json()
        assert rows == [{"uid": "gene-0003"}]
        assert get(server, "/resource/uzcf-b9dh.json", **{"$select": "uid,owner"}).status_code == 400


def test_unknown_routes_and_ids_answer_404(server):
    assert get(server, "/api/views/zzzz-0000.json").status_code == 404
    assert get(server, "/resource/zzzz-0000.csv", **{"$order": ":id"}).status_code == 404
    assert get(server, "/api/catalog/v1").status_code == 404


def test_every_csv_page_starts_with_the_header_and_pages_cover_the_dataset(server):
    dataset = server.portal.datasets["8835-5baf"]
    pages = [get(server, "/resource/8835-5baf.csv", **{"$order": ":id", "$limit": "500", "$offset": str(o)}).content
             for o in (0, 500, 1000, 1500)]
    assert all(page.startswith(dataset.header) for page in pages)
    assert dataset.header + b"".join(p[len(dataset.header):] for p in pages) == dataset.data
    assert pages[-1] == dataset.header
    default = get(server, "/resource/8835-5baf.csv", **{"$order": ":id"}).text
    assert len(list(csv.reader(io.StringIO(default, newline="")))) == 1 + 1000  # Socrata's default page


def test_pages_split_on_records_not_on_embedded_newlines():
    dataset = generated_dataset("gene-0001", 30)
    assert dataset.data.count(b"\n") > 31
    assert len(dataset.offsets) == 31
    assert b"".join(dataset.page(i, 1)[len(dataset.header):] for i in range(30)) == dataset.data[len(dataset.header):]


def test_faults_apply_for_the_first_n_requests_then_stop():
    dataset = generated_dataset("gene-0002", 10)
    portal = Portal()
    portal.add(dataset, inventory_row(dataset))
    with PortalServer(portal) as server:
        server.faults.inject("gene-0002", Fault.throttle(retry_after=7, times=1))
        server.faults.inject("gene-0002", Fault.html(times=1, endpoint="metadata"))
        page = {"$order": ":id", "$limit": "5"}
        throttled = get(server, "/resource/gene-0002.csv", **page)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
        assert get(server, "/resource/gene-0002.csv", **page).status_code == 200
        assert get(server, "/api/views/gene-0002.json").headers["Content-Type"].startswith("text/html")
        assert get(server, "/api/views/gene-0002.json").json()["id"] == "gene-0002"

        server.faults.inject("gene-0002", Fault.header_change())
        assert get(server, "/resource/gene-0002.csv", **page).content.startswith(dataset.header)
        assert not get(server, "/resource/gene-0002.csv", **page, **{"$offset": "5"}).content.startswith(dataset.header)
        server.faults.clear("gene-0002")

        server.faults.inject("gene-0002", Fault.truncated(declare_length=False))
        cut = get(server, "/resource/gene-0002.csv", **page).content
        assert len(cut) < len(dataset.page(0, 5))
        assert server.requests[("csv", "gene-0002")] == 5 and server.requests[("metadata", "gene-0002")] == 2


def test_the_snapshot_holds_the_real_sample_unchanged_and_labels_generated_data():
    portal = load_snapshot()
    source = list(csv.reader(io.StringIO((SNAPSHOT_DIR / "source" / "gt2j-8ykr-sample.csv").read_text("utf-8"),
                                         newline="")))
    assert portal.datasets["gt2j-8ykr"].rows() == source[1:]
    assert [c["name"] for c in portal.datasets["gt2j-8ykr"].metadata["columns"]] == source[0]
    for dataset_id in ("jbjy-vk9h", "9ssf-i6c5", "8835-5baf"):
        assert "GENERATED" in portal.datasets[dataset_id].metadata["description"]
    assert portal.datasets["8835-5baf"].row_count > 1000
    assert {"uid", "owner", "contact_email", "informacindedatos_frecuenciadeactualizacin", "audience",
            "publication_stage", "type"} <= set(portal.inventory[0])
    assert sum(f.stat().st_size for f in Path(SNAPSHOT_DIR).rglob("*") if f.is_file()) < 1024 * 1024


def test_a_client_resetting_its_keep_alive_connection_prints_no_traceback(server, capfd):
    import socket
    import struct
    import time

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(b"GET /api/views/gt2j-8ykr.json HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(9).startswith(b"HTTP/1.")  # answered; the server now waits for a next request
        time.sleep(0.2)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
    time.sleep(0.3)
    assert "ConnectionResetError" not in capfd.readouterr().err
