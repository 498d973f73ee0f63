"""A local Socrata-compatible portal: the harvester's tests, benchmark and offline demo talk to it.

It serves exactly the SODA 2 endpoints the harvester uses, and nothing else:

- `GET /resource/{inventory_id}.json`: the asset inventory, with the SoQL subset the harvester
  and the tests send: `$select` (a column list), `$where` (`col='v'` and `col in ('a','b')`
  joined by `AND`), `$order` (`col` or `col ASC`), `$limit`, `$offset`. Anything else answers
  400, so a drift between the harvester and this server shows up as a failure instead of a
  silent mismatch. A column the inventory does not have, named in any of them, answers 400
  `query.soql.no-such-column` as Socrata does (it is not left out like a null value).
- `GET /api/views/{id}.json`: a dataset's metadata document, as stored.
- `GET /resource/{id}.csv?$order=:id&$limit=N&$offset=M`: one page of a dataset; every page
  starts with the header, like Socrata. `$order=:id` is required (unordered paging is unstable on
  Socrata); without `$limit` a page has 1000 rows, the portal's default.

API (the demo and the tests use exactly this)::

    portal = load_snapshot(Path("local/snapshot"))        # or Portal(inventory_id, rows, datasets)
    portal.add(generated_dataset("abcd-1234", rows=5000)) # generated data, clearly labelled
    with PortalServer(portal, host="127.0.0.1", port=0) as server:
        server.url                                       # "http://127.0.0.1:PORT": SODA_DOMAIN
        server.faults.inject("abcd-1234", Fault.throttle(retry_after=1, times=2))
        server.faults.inject("abcd-1234", Fault.error(500))           # always
        server.faults.inject("abcd-1234", Fault.slow(3.0, times=1))   # beyond the client timeout
        server.faults.inject("abcd-1234", Fault.truncated())          # body cut in half
        server.faults.inject("abcd-1234", Fault.html(times=1))        # 200 with an HTML page
        server.faults.inject("abcd-1234", Fault.header_change())      # later pages, other header
        server.faults.inject("abcd-1234", Fault.socrata_transfer())   # gzip, chunked, as Socrata
        server.faults.clear("abcd-1234")
        server.requests[("csv", "abcd-1234")]            # requests served per (endpoint, id)
        server.peak_in_flight                            # most requests served at once
        server.peak_datasets_in_flight                   # most datasets with a request being served
        server.log                                       # [(endpoint, id, params), ...]

Endpoints for faults and counters: "csv", "metadata", "json" (the inventory).
`python -m local.portal --snapshot local/snapshot --port 8081` serves a snapshot until Ctrl-C.

Why no web framework: the standard library's ThreadingHTTPServer serves this handful of GET
routes, needs no install, and lets a fault cut a response mid-body at the socket, which a
framework's response objects make awkward.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import sys
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import parse_qsl, urlsplit

DEFAULT_LIMIT = 1000  # Socrata's page size when $limit is absent
SNAPSHOT_DIR = Path(__file__).resolve().parent / "snapshot"
GENERATED_NOTE = "GENERATED data for offline tests and demos; not published by datos.gov.co."


# --- Data ---------------------------------------------------------------------------------


def encode_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> tuple[bytes, array]:
    """CSV bytes as Socrata writes them (every field quoted, `\\n` line ends) and the byte offset
    of each record after the header (plus the end), so a page is one slice."""
    out = io.BytesIO()
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    out.write(text.getvalue().encode())
    offsets = array("q", [out.tell()])
    for row in rows:
        text.seek(0)
        text.truncate()
        writer.writerow(row)
        out.write(text.getvalue().encode())
        offsets.append(out.tell())
    return out.getvalue(), offsets


def record_offsets(data: bytes) -> array:
    """Byte offsets of the records of RFC 4180 CSV bytes (a newline inside quotes is data).

    Index 0 is the end of the header; the last entry is the end of the data."""
    offsets = array("q")
    in_quotes = False
    position = 0
    for line in data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"):
        position += len(line) + 1
        if line.count(b'"') % 2:
            in_quotes = not in_quotes
        if not in_quotes:
            offsets.append(min(position, len(data)))
    if in_quotes:
        raise ValueError("CSV ends inside a quoted field")
    return offsets


@dataclass
class Dataset:
    """One dataset: its `/api/views` metadata and its CSV exactly as the portal serves it."""

    id: str
    metadata: dict
    data: bytes  # header + records
    offsets: array  # see record_offsets()

    @classmethod
    def from_rows(cls, dataset_id: str, metadata: dict, header: Sequence[str],
                  rows: Iterable[Sequence[Any]]) -> Dataset:
        data, offsets = encode_csv(header, rows)
        return cls(dataset_id, metadata, data, offsets)

    @classmethod
    def from_csv(cls, dataset_id: str, metadata: dict, data: bytes) -> Dataset:
        return cls(dataset_id, metadata, data, record_offsets(data))

    @property
    def row_count(self) -> int:
        return len(self.offsets) - 1

    @property
    def header(self) -> bytes:
        return self.data[: self.offsets[0]]

    def page(self, offset: int, limit: int) -> bytes:
        """Header plus records [offset, offset+limit), as `/resource/{id}.csv` pages them."""
        start = self.offsets[min(offset, self.row_count)]
        end = self.offsets[min(offset + limit, self.row_count)]
        return self.header + self.data[start:end]

    def rows(self) -> list[list[str]]:
        """Parsed records (header excluded): what a complete harvest must hold."""
        return list(csv.reader(io.StringIO(self.data.decode(), newline="")))[1:]


@dataclass
class Portal:
    """The inventory rows (real column names of `uzcf-b9dh`) and the datasets.

    `inventory_columns` are the inventory dataset's columns (None: every key of its rows; a JSON
    row leaves out its null values, not the dataset's columns)."""

    inventory_id: str = "uzcf-b9dh"
    inventory: list[dict] = field(default_factory=list)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    inventory_columns: tuple[str, ...] | None = None

    def add(self, dataset: Dataset, inventory_row: dict | None = None) -> Dataset:
        self.datasets[dataset.id] = dataset
        if inventory_row is not None:
            self.inventory = [r for r in self.inventory if r.get("uid") != dataset.id] + [inventory_row]
        return dataset


def inventory_row(dataset: Dataset, **overrides: Any) -> dict:
    """An eligible inventory row for a dataset, from its metadata (SODA JSON: numbers as strings)."""
    meta = dataset.metadata
    custom = (meta.get("metadata") or {}).get("custom_fields") or {}
    frequency = (custom.get("Información de Datos") or {}).get("Frecuencia de Actualización", "")
    row = {
        "uid": dataset.id, "name": meta.get("name", ""), "description": meta.get("description", ""),
        "owner": (meta.get("owner") or {}).get("displayName", ""), "type": "dataset",
        "category": meta.get("category", ""), "tags": ",".join(meta.get("tags") or []),
        "url": f"https://www.datos.gov.co/d/{dataset.id}",
        "creation_date": "2024-01-15T10:00:00.000", "last_data_updated_date": "2025-06-01T00:00:00.000",
        "last_metadata_updated_date": "2025-06-01T00:00:00.000",
        "informacindedatos_frecuenciadeactualizacin": frequency, "row_count": str(dataset.row_count),
        "column_count": str(len(meta.get("columns") or [])), "contact_email": "datos@example.gov.co",
        "license": meta.get("license", {}).get("name", "") if isinstance(meta.get("license"), dict) else "",
        "attribution": meta.get("attribution", ""), "audience": "public", "publication_stage": "published",
        "visits": "10", "downloads": "3", "api_endpoint": f"https://www.datos.gov.co/resource/{dataset.id}.json",
        "domain": "www.datos.gov.co",
    }
    row.update(overrides)
    return {k: v for k, v in row.items() if v is not None}


_WORDS = ["Bogotá", "Medellín", "Cali", "Nariño", "Caquetá", "Boyacá", "Peña", "Cúcuta", "Ibagué",
          "Montería", "San Andrés", "Quibdó"]


def generated_rows(count: int, seed: int = 7) -> Iterable[list[str]]:
    """Deterministic rows with what real portal data throws at a parser: quoted commas, embedded
    newlines, quotes, accents and ñ, empty cells."""
    rng = random.Random(seed)
    for i in range(count):
        town = _WORDS[i % len(_WORDS)]
        note = ("" if i % 7 == 0 else
                f'Sede "{town}", línea {i}\nsegunda línea' if i % 5 == 0 else
                f"{town}, año {2000 + i % 25}, niño/niña")
        yield [str(i + 1), town, f"{rng.random() * 1000:.3f}", note, "" if i % 3 == 0 else str(i % 11),
               f"{2020 + i % 5}-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:00.000"]


GENERATED_COLUMNS = [("Código", "c_digo", "number", "Consecutivo del registro."),
                     ("Municipio", "municipio", "text", "Municipio del registro."),
                     ("Valor", "valor", "number", "Valor medido."),
                     ("Observación", "observaci_n", "text", "Texto libre con comas, comillas y saltos de línea."),
                     ("Categoría", "categor_a", "number", "Categoría codificada; vacía cuando no aplica."),
                     ("Fecha", "fecha", "calendar_date", "Fecha del registro.")]


def view_metadata(dataset_id: str, name: str, *, columns: Sequence[tuple[str, str, str, str]],
                  rows_updated_at: int = 1748736000, description: str = "", frequency: str = "Mensual",
                  owner: str = "Entidad de prueba", category: str = "Estadísticas Nacionales",
                  attribution: str = "Entidad de prueba") -> dict:
    """An `/api/views/{id}.json` document with the fields the pipeline reads."""
    return {
        "id": dataset_id, "name": name, "description": description, "category": category,
        "attribution": attribution, "license": {"name": "Creative Commons Attribution | Share Alike 4.0 International"},
        "tags": ["prueba"], "owner": {"displayName": owner}, "createdAt": 1705312800,
        "publicationDate": 1705312800, "rowsUpdatedAt": rows_updated_at, "viewLastModified": rows_updated_at,
        "viewCount": 10, "downloadCount": 3,
        "columns": [{"name": n, "fieldName": f, "dataTypeName": t, "description": d} for n, f, t, d in columns],
        "metadata": {"custom_fields": {"Información de Datos": {"Frecuencia de Actualización": frequency}}},
    }


def generated_dataset(dataset_id: str, rows: int, *, seed: int = 7, name: str | None = None,
                      rows_updated_at: int = 1748736000, frequency: str = "Mensual") -> Dataset:
    """A generated dataset, labelled as generated in its name and description."""
    meta = view_metadata(dataset_id, name or f"Datos generados {dataset_id}", columns=GENERATED_COLUMNS,
                         rows_updated_at=rows_updated_at, description=GENERATED_NOTE, frequency=frequency)
    return Dataset.from_rows(dataset_id, meta, [c[1] for c in GENERATED_COLUMNS], generated_rows(rows, seed))


def load_snapshot(path: Path | str = SNAPSHOT_DIR) -> Portal:
    """A snapshot folder: `inventory.json` ({"inventory_id", "rows"}), `views/{id}.json`, `data/{id}.csv`."""
    root = Path(path)
    manifest = json.loads((root / "inventory.json").read_text(encoding="utf-8"))
    portal = Portal(manifest["inventory_id"], manifest["rows"])
    for view in sorted((root / "views").glob("*.json")):
        dataset_id = view.stem
        portal.add(Dataset.from_csv(dataset_id, json.loads(view.read_text(encoding="utf-8")),
                                    (root / "data" / f"{dataset_id}.csv").read_bytes()))
    return portal


# --- Faults -------------------------------------------------------------------------------


TRICKLE_SECONDS = 20.0  # how long a trickling page goes on


@dataclass(frozen=True)
class Fault:
    """A misbehaviour of the portal for one dataset; `times=None` means always."""

    kind: str  # "status", "slow", "trickle", "truncated", "html", "header_change", "socrata_transfer"
    endpoint: str = "csv"  # "csv", "metadata" or "json"
    times: int | None = None
    status: int = 500
    retry_after: int | None = None
    delay: float = 0.0
    declare_length: bool = True  # truncated: keep the full Content-Length (the client sees a short read)
    at_record: bool = False  # truncated: cut right after a whole record (looks complete without a length)
    min_offset: int = 0  # csv: only pages whose $offset is at least this
    cut: bool = False  # socrata_transfer: the body ends halfway, without its last chunk

    @classmethod
    def throttle(cls, retry_after: int = 1, times: int | None = None, endpoint: str = "csv") -> Fault:
        return cls("status", endpoint, times, status=429, retry_after=retry_after)

    @classmethod
    def error(cls, status: int = 500, times: int | None = None, endpoint: str = "csv",
              min_offset: int = 0) -> Fault:
        return cls("status", endpoint, times, status=status, min_offset=min_offset)

    @classmethod
    def slow(cls, delay: float, times: int | None = None, endpoint: str = "csv") -> Fault:
        return cls("slow", endpoint, times, delay=delay)

    @classmethod
    def trickle(cls, delay: float, times: int | None = None) -> Fault:
        """A csv page whose body comes one byte every `delay` seconds (each read is quick), cut
        after TRICKLE_SECONDS."""
        return cls("trickle", "csv", times, delay=delay)

    @classmethod
    def truncated(cls, times: int | None = None, declare_length: bool = True, min_offset: int = 0,
                  at_record: bool = False) -> Fault:
        return cls("truncated", "csv", times, declare_length=declare_length, min_offset=min_offset,
                   at_record=at_record)

    @classmethod
    def html(cls, times: int | None = None, endpoint: str = "csv") -> Fault:
        return cls("html", endpoint, times)

    @classmethod
    def socrata_transfer(cls, times: int | None = None, cut: bool = False, min_offset: int = 0) -> Fault:
        """A csv page sent as Socrata sends it (sodapy's recorded /resource CSV answer):
        `Content-Encoding: gzip`, `Transfer-Encoding: chunked`, no Content-Length (this server
        otherwise sends a plain body with its length). `cut`: the connection closes halfway,
        without the last chunk (a body cut short)."""
        return cls("socrata_transfer", "csv", times, min_offset=min_offset, cut=cut)

    @classmethod
    def header_change(cls, times: int | None = None) -> Fault:
        """Pages after the first carry another header (a schema change mid-harvest)."""
        return cls("header_change", "csv", times, min_offset=1)


class Faults:
    """Thread-safe registry: each matching request consumes one use of the first applicable fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[list]] = {}

    def inject(self, dataset_id: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(dataset_id, []).append([fault, fault.times])

    def clear(self, dataset_id: str | None = None) -> None:
        with self._lock:
            if dataset_id is None:
                self._faults.clear()
            else:
                self._faults.pop(dataset_id, None)

    def take(self, dataset_id: str, endpoint: str, offset: int = 0) -> Fault | None:
        with self._lock:
            for entry in self._faults.get(dataset_id, []):
                fault, left = entry
                if fault.endpoint != endpoint or left == 0:
                    continue
                if offset < fault.min_offset:
                    continue
                if left is not None:
                    entry[1] = left - 1
                return fault
        return None


# --- SoQL subset --------------------------------------------------------------------------


class BadQuery(ValueError):
    """A query outside the supported subset: answered with 400."""


class NoSuchColumn(BadQuery):
    """A query naming a column the dataset does not have: 400 `query.soql.no-such-column`, the
    error code and body shape of SODA 2.1 (`errorCode`, `message`, `data`)."""

    def __init__(self, column: str, dataset_id: str) -> None:
        super().__init__(f"Query coordinator error: query.soql.no-such-column; No such column: {column}; "
                         f"position: Map(row -> 1, column -> 1, line -> \"{column}\")")
        self.column, self.dataset_id = column, dataset_id


_IDENT = r"[a-z_][a-z0-9_]*"
_LITERAL = r"'(?:[^']|'')*'"
_EQ = re.compile(rf"^\s*({_IDENT})\s*=\s*({_LITERAL})\s*$", re.I)
_IN = re.compile(rf"^\s*({_IDENT})\s+in\s*\(\s*({_LITERAL}(?:\s*,\s*{_LITERAL})*)\s*\)\s*$", re.I)


def _unquote(literal: str) -> str:
    return literal[1:-1].replace("''", "'")


def parse_where(where: str) -> list[tuple[str, set[str]]]:
    """`a='x' AND b in ('y','z')` -> [("a", {"x"}), ("b", {"y", "z"})]."""
    conditions = []
    for part in re.split(r"\s+AND\s+", where.strip(), flags=re.I):
        if match := _EQ.match(part):
            conditions.append((match[1], {_unquote(match[2])}))
        elif match := _IN.match(part):
            conditions.append((match[1], {_unquote(v) for v in re.findall(_LITERAL, match[2])}))
        else:
            raise BadQuery(f"unsupported $where condition: {part!r}")
    return conditions


def _int_param(params: dict, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw):
        raise BadQuery(f"{name} must be a non-negative integer")
    return int(raw)


def query_inventory(rows: list[dict], params: dict[str, str], columns: Iterable[str] | None = None,
                    dataset_id: str = "uzcf-b9dh") -> list[dict]:
    """One inventory page. `columns`: the inventory's columns (None: every key of `rows`); a query
    naming another one raises NoSuchColumn, as Socrata answers it."""
    unknown = set(params) - {"$select", "$where", "$order", "$limit", "$offset"}
    if unknown:
        raise BadQuery(f"unsupported parameters: {', '.join(sorted(unknown))}")
    known = set(columns) if columns is not None else {column for row in rows for column in row}

    def check(column: str) -> str:
        if column not in known:
            raise NoSuchColumn(column, dataset_id)
        return column

    selected = rows
    if "$where" in params:
        conditions = [(check(col), values) for col, values in parse_where(params["$where"])]
        selected = [r for r in selected if all(r.get(col) in values for col, values in conditions)]
    if "$order" in params:
        match = re.fullmatch(rf"\s*({_IDENT})(\s+ASC)?\s*", params["$order"], re.I)
        if not match:
            raise BadQuery(f"unsupported $order: {params['$order']!r}")
        order = check(match[1])
        selected = sorted(selected, key=lambda r: str(r.get(order, "")))
    offset = _int_param(params, "$offset", 0)
    limit = _int_param(params, "$limit", DEFAULT_LIMIT)
    if "$select" in params:
        selection = [c.strip() for c in params["$select"].split(",")]
        if not all(re.fullmatch(_IDENT, c) for c in selection):
            raise BadQuery(f"unsupported $select: {params['$select']!r}")
        for column in selection:
            check(column)
    selected = selected[offset: offset + limit]
    if "$select" in params:
        # Socrata omits null fields from JSON rows; so does this server.
        selected = [{c: r[c] for c in selection if c in r} for r in selected]
    return selected


# --- HTTP -------------------------------------------------------------------------------

_RESOURCE = re.compile(r"^/resource/([a-z0-9]{4}-[a-z0-9]{4})\.(json|csv)$")
_VIEW = re.compile(r"^/api/views/([a-z0-9]{4}-[a-z0-9]{4})\.json$")
_HTML_PAGE = b"<!DOCTYPE html><html><head><title>Error</title></head><body>Service unavailable</body></html>"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real portal behind a CDN
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus delayed ACKs
    # hold each small response ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if match := _VIEW.match(parts.path):
            endpoint, dataset_id = "metadata", match[1]
        elif match := _RESOURCE.match(parts.path):
            endpoint, dataset_id = match[2], match[1]
        else:
            return self._error(404, "not_found", f"no route for {parts.path}")
        owner = self.server.owner
        with owner._lock:
            owner.requests[(endpoint, dataset_id)] += 1
            owner.log.append((endpoint, dataset_id, params))
            token = self.headers.get("X-App-Token")
            if token:
                owner.app_tokens.add(token)
        try:
            offset = _int_param(params, "$offset", 0) if endpoint == "csv" else 0
        except BadQuery as error:
            return self._error(400, "query.compiler.malformed", str(error))
        with owner._lock:
            owner.in_flight += 1
            owner.peak_in_flight = max(owner.peak_in_flight, owner.in_flight)
            owner.datasets_in_flight[dataset_id] += 1
            owner.peak_datasets_in_flight = max(owner.peak_datasets_in_flight, len(owner.datasets_in_flight))
        try:
            self._serve(endpoint, dataset_id, params, owner.faults.take(dataset_id, endpoint, offset))
        finally:
            with owner._lock:
                owner.in_flight -= 1
                owner.datasets_in_flight[dataset_id] -= 1
                if not owner.datasets_in_flight[dataset_id]:
                    del owner.datasets_in_flight[dataset_id]

    def _serve(self, endpoint: str, dataset_id: str, params: dict, fault: Fault | None) -> None:
        portal = self.server.portal
        if fault is not None:
            if fault.kind == "status":
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                return self._error(fault.status, "fault", "injected fault", headers)
            if fault.kind == "slow":
                time.sleep(fault.delay)
            if fault.kind == "html":
                return self._send(200, "text/html; charset=utf-8", _HTML_PAGE)
        try:
            if endpoint == "metadata":
                dataset = portal.datasets.get(dataset_id)
                if dataset is None:
                    return self._error(404, "not_found", f"no view {dataset_id}")
                return self._json(dataset.metadata)
            if endpoint == "json":
                if dataset_id != portal.inventory_id:
                    return self._error(400, "unsupported", "this server serves JSON rows of the inventory only")
                return self._json(query_inventory(portal.inventory, params, portal.inventory_columns,
                                                  portal.inventory_id))
            return self._csv(portal.datasets.get(dataset_id), dataset_id, params, fault)
        except NoSuchColumn as error:
            return self._send(400, "application/json; charset=UTF-8", json.dumps({
                "message": str(error), "errorCode": "query.soql.no-such-column",
                "data": {"column": error.column, "dataset": error.dataset_id}}).encode())
        except BadQuery as error:
            return self._error(400, "query.compiler.malformed", str(error))

    def _csv(self, dataset: Dataset | None, dataset_id: str, params: dict, fault: Fault | None) -> None:
        if dataset is None:
            return self._error(404, "not_found", f"no dataset {dataset_id}")
        unknown = set(params) - {"$order", "$limit", "$offset"}
        if unknown:
            raise BadQuery(f"unsupported parameters: {', '.join(sorted(unknown))}")
        if params.get("$order") != ":id":
            raise BadQuery("this server pages datasets only with $order=:id")
        body = dataset.page(_int_param(params, "$offset", 0), _int_param(params, "$limit", DEFAULT_LIMIT))
        if fault is not None and fault.kind == "header_change":
            body = b'"changed_column",' + body
        if fault is not None and fault.kind == "trickle":
            return self._trickle(dataset.id, body, fault.delay)
        if fault is not None and fault.kind == "socrata_transfer":
            return self._gzip_chunked(body, cut=fault.cut)
        if fault is not None and fault.kind == "truncated":
            if fault.at_record:
                records = record_offsets(body)
                cut = body[: records[len(records) // 2]]
            else:
                cut = body[: max(len(dataset.header) + 1, len(body) // 2)]
            self.send_response(200)
            self.send_header("Content-Type", "text/csv; charset=UTF-8")
            if fault.declare_length:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(cut)
            self.close_connection = True
            return None
        return self._send(200, "text/csv; charset=UTF-8", body)

    def _gzip_chunked(self, body: bytes, cut: bool) -> None:
        compressed = gzip.compress(body)
        chunks = [compressed[at: at + 8192] for at in range(0, len(compressed), 8192)]
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=UTF-8")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks[: len(chunks) // 2] if cut else chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        if cut:  # no last chunk: the client sees the connection end mid-body
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")

    def _trickle(self, dataset_id: str, body: bytes, delay: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.close_connection = True
        until = time.monotonic() + TRICKLE_SECONDS  # then the body ends short: a test fails, never hangs
        try:
            for at in range(len(body)):
                if time.monotonic() > until:
                    break
                self.wfile.write(body[at: at + 1])
                time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: what the fault is for
            with self.server.owner._lock:
                self.server.owner.hung_up[dataset_id] += 1

    def _json(self, value: Any) -> None:
        self._send(200, "application/json; charset=UTF-8", json.dumps(value, ensure_ascii=False).encode())

    def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        body = json.dumps({"code": code, "error": True, "message": message}).encode()
        self._send(status, "application/json; charset=UTF-8", body, headers)

    def _send(self, status: int, content_type: str, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    portal: Portal
    owner: PortalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that exits (or hangs up on a trickling page) with a keep-alive connection open
        # resets it while the server waits for its next request: expected, not worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class PortalServer:
    """Serves a Portal on a background thread; a context manager. `port=0` picks a free port."""

    def __init__(self, portal: Portal, host: str = "127.0.0.1", port: int = 0) -> None:
        self.portal = portal
        self.faults = Faults()
        self.requests: Counter = Counter()
        self.hung_up: Counter = Counter()  # trickling pages the client stopped reading, per dataset
        self.log: list[tuple[str, str, dict]] = []
        self.app_tokens: set[str] = set()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.datasets_in_flight: Counter = Counter()  # requests being served, per dataset
        self.peak_datasets_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.portal = portal
        self._httpd.owner = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> PortalServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="portal",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> PortalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.portal", description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT_DIR, help="snapshot folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    with PortalServer(load_snapshot(args.snapshot), args.host, args.port) as server:
        print(f"serving {args.snapshot} at {server.url} (SODA_DOMAIN={server.url}); Ctrl-C stops", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
