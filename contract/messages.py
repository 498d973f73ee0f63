"""The message the harvester sends to SQS for each stored dataset, and its validation.

The producer (container/) builds it with `HarvestMessage(...).to_body()`; the consumer
(handlers/metadata.py) reads it with `HarvestMessage.from_body(body)`, which rejects anything
malformed with `InvalidMessage` naming the problem.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from contract import dataset_key, is_dataset_id


# SNS and SQS take 256 KiB; the notification adds a few fields to this message, so keep a margin.
MAX_BODY_BYTES = 200_000
# DynamoDB numbers hold 38 digits: the Lambdas store these counts, so a larger one could never be
# written (every attempt would fail). No real count or timestamp comes near it.
NUMBER_LIMIT = 10**38
_SHORT_TEXT = 200
# In a shortened message every other text (owner, name, tags, attribution, ...) keeps this many
# characters: with the columns gone, the body is then bounded well under MAX_BODY_BYTES.
_SHORT_FIELD = 1_000
_KEPT_WHOLE = {"ID", "bucket", "key", "version_id", "harvested_at"}  # what identifies the data; short


# SQS and SNS refuse a message holding U+FFFE or U+FFFF (their character set ends at U+FFFD
# below the supplementary planes): JSON escapes keep those characters without sending them raw.
# Control characters are escaped by json.dumps already, lone surrogates replaced by the harvester.
_NONCHARACTERS = {0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"}


def _compact_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_NONCHARACTERS)


class InvalidMessage(ValueError):
    """A message body that does not follow the contract."""


def _json_object(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (TypeError, json.JSONDecodeError) as error:
        raise InvalidMessage(f"body is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidMessage("body is not a JSON object")
    return data


@dataclass(frozen=True)
class Column:
    """One column as the portal's metadata declares it (`/api/views/{id}.json` `columns[]`)."""

    name: str
    field_name: str
    data_type: str = ""
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class InventoryFields:
    """What the asset inventory says about a dataset that the quality criteria need, under the
    same names in the harvester's inventory entry and in the message (empty when the portal left
    them blank)."""

    update_frequency: str = ""
    description: str = ""
    license: str = ""
    attribution: str = ""
    tags: str = ""
    created_at: str = ""
    metadata_updated_at: str = ""
    declared_rows: int | None = None
    declared_columns: int | None = None
    # For the accessibility and relevance criteria.
    audience: str = ""
    api_endpoint: str = ""
    visits: int | None = None
    downloads: int | None = None


@dataclass(frozen=True)
class HarvestMessage(InventoryFields):
    # The PoC's keys, kept verbatim.
    ID: str
    OWNER: str
    NAME: str
    EMAIL: str
    CATEGORY: str
    # Where and what was stored.
    bucket: str
    key: str
    version_id: str | None
    size: int
    rows: int
    harvested_at: str  # ISO 8601, UTC
    source_updated_at: int | None  # portal `rowsUpdatedAt`, epoch seconds
    # The metadata's declared columns (`/api/views/{id}.json`).
    columns: tuple[Column, ...] = field(default_factory=tuple)
    # True when descriptions or columns were shortened to fit MAX_BODY_BYTES.
    truncated: bool = False

    def to_body(self) -> str:
        """The JSON body, within MAX_BODY_BYTES: a very wide dataset's metadata is shortened
        (descriptions and long texts first, then trailing columns) rather than failing the send."""
        body = _compact_json(self._wire())
        if len(body.encode()) <= MAX_BODY_BYTES:
            return body
        texts = {f.name: getattr(self, f.name)[:_SHORT_FIELD] for f in dataclasses.fields(self)
                 if f.name not in _KEPT_WHOLE and isinstance(getattr(self, f.name), str)}
        short = dataclasses.replace(
            self, truncated=True, **{**texts, "description": self.description[:_SHORT_TEXT]},
            columns=tuple(dataclasses.replace(c, description=c.description[:_SHORT_TEXT]) for c in self.columns))
        while len(encoded := _compact_json(short._wire()).encode()) > MAX_BODY_BYTES and short.columns:
            short = dataclasses.replace(short, columns=short.columns[: len(short.columns) * 3 // 4])
        if len(encoded) > MAX_BODY_BYTES:  # cannot happen with the bounds above; never send what SQS refuses
            raise ValueError(f"the message of {self.ID} does not fit in {MAX_BODY_BYTES} bytes")
        return encoded.decode()

    def check_location(self, bucket: str) -> None:
        """Raises InvalidMessage unless the message names its dataset's own `{ID}/{ID}.csv` in
        `bucket` (the consumer's): no producer can have one dataset processed from another's object."""
        if self.bucket != bucket:
            raise InvalidMessage(f"bucket {self.bucket!r} is not the configured bucket {bucket!r}")
        if self.key != dataset_key(self.ID):
            raise InvalidMessage(f"key {self.key!r} is not {dataset_key(self.ID)!r}")

    def _wire(self) -> dict[str, Any]:
        """The fields as JSON keys, the PoC's first (as its messages had them), then the rest."""
        data = dataclasses.asdict(self)
        return {**{name: data[name] for name in ("ID", "OWNER", "NAME", "EMAIL", "CATEGORY")}, **data}

    @classmethod
    def from_body(cls, body: str) -> HarvestMessage:
        return cls.from_dict(_json_object(body))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HarvestMessage:
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise InvalidMessage(f"missing keys: {', '.join(missing)}")
        if not is_dataset_id(data["ID"]):
            raise InvalidMessage(f"ID is not a Socrata dataset id: {data['ID']!r}")
        for name in ("bucket", "key"):
            if not isinstance(data[name], str) or not data[name]:
                raise InvalidMessage(f"{name} must be a non-empty string")
        for name in ("size", "rows"):
            if (not isinstance(data[name], int) or isinstance(data[name], bool)
                    or not 0 <= data[name] < NUMBER_LIMIT):
                raise InvalidMessage(f"{name} must be a non-negative integer below 1e38")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["columns"] = tuple(Column(**c) for c in data.get("columns") or ())
        except TypeError as error:
            raise InvalidMessage(f"columns: {error}") from None
        # Types as the dataclass declares them, so a consumer never meets a None where text is due
        # or a string where a count is (another producer, a hand-edited replay): text from null is
        # "", a count must be a whole number or null.
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            if f.type in ("str", str):
                values[f.name] = "" if values[f.name] is None else str(values[f.name])
            elif f.type in ("int | None", int | None):
                value = values[f.name]
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                          or abs(value) >= NUMBER_LIMIT):
                    raise InvalidMessage(f"{f.name} must be a whole number below 1e38 or null (got {value!r})")
        return cls(**values)


@dataclass(frozen=True)
class DatasetNotification:
    """What the metadata Lambda publishes to SNS once a dataset's item is stored.

    On the wire it is one flat JSON object: the harvest message's fields (its `version_id` set to
    the version actually hashed) plus `HASH` and `processed_at`, so the criteria Lambda has every
    piece of metadata it scores without reading DynamoDB. Build with `to_body()`, read with
    `DatasetNotification.from_body(text)` (raises `InvalidMessage`).
    """

    HASH: str  # SHA-256 of the stored object, lower-case hex
    processed_at: str  # ISO 8601, UTC
    dataset: HarvestMessage

    @property
    def ID(self) -> str:  # noqa: N802 - the PoC's attribute name
        return self.dataset.ID

    def to_body(self) -> str:
        dataset = json.loads(self.dataset.to_body())  # the size-bounded form
        return _compact_json({**dataset, "HASH": self.HASH, "processed_at": self.processed_at})

    @classmethod
    def from_body(cls, body: str) -> DatasetNotification:
        data = _json_object(body)
        digest = data.get("HASH")
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            raise InvalidMessage(f"HASH is not a SHA-256 hex digest: {digest!r}")
        processed_at = data.get("processed_at")
        if not isinstance(processed_at, str) or not processed_at:
            raise InvalidMessage("processed_at must be a non-empty string")
        return cls(HASH=digest, processed_at=processed_at, dataset=HarvestMessage.from_dict(data))


_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
