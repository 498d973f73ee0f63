"""What the portal says about a dataset, read by column name: an inventory row (`uzcf-b9dh`) and
its `/api/views` metadata, and the SQS message built from both. Pure functions, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from contract.messages import NUMBER_LIMIT, Column, HarvestMessage, InventoryFields

# Inventory column (API name) -> InventoryEntry field. The PoC read these by position.
INVENTORY_FIELDS = {
    "uid": "id",
    "name": "name",
    "owner": "owner",
    "contact_email": "email",
    "category": "category",
    "description": "description",
    "license": "license",
    "attribution": "attribution",
    "tags": "tags",
    "creation_date": "created_at",
    "last_metadata_updated_date": "metadata_updated_at",
    "informacindedatos_frecuenciadeactualizacin": "update_frequency",
    "row_count": "declared_rows",
    "column_count": "declared_columns",
    "audience": "audience",
    "api_endpoint": "api_endpoint",
    "visits": "visits",
    "downloads": "downloads",
}
_NUMBERS = ("declared_rows", "declared_columns", "visits", "downloads")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins the valid pairs: what is left is alone
FREQUENCY_GROUP, FREQUENCY_FIELD = "Información de Datos", "Frecuencia de Actualización"


@dataclass(frozen=True)
class InventoryEntry(InventoryFields):
    id: str
    name: str = ""
    owner: str = ""
    email: str = ""
    category: str = ""
    missing: tuple[str, ...] = field(default=(), compare=False)


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)  # tags may be an array
    # JSON can escape half of a surrogate pair ("\ud83d": an emoji cut short by the portal);
    # json.loads keeps it, and no UTF-8 encoder takes it, so the message could never be sent.
    return _LONE_SURROGATE.sub("\ufffd", text)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> int | None:
    try:
        number = int(float(value))  # SODA JSON gives numbers as strings: "1234", "12.0"
    except (TypeError, ValueError, OverflowError):  # OverflowError: "1e999", "Infinity"
        return None
    return number if abs(number) < NUMBER_LIMIT else None  # "1e40": no message could carry it


def entry_from_row(row: dict[str, Any]) -> InventoryEntry:
    """An inventory row by column name; missing or empty columns become empty values (listed in
    `missing`), never an error: the criteria Lambda scores what is missing."""
    values: dict[str, Any] = {}
    missing = []
    for column, name in INVENTORY_FIELDS.items():
        raw = row.get(column)
        if raw in (None, ""):
            missing.append(column)
        values[name] = _number(raw) if name in _NUMBERS else _text(raw).strip()
    return InventoryEntry(**values, missing=tuple(missing))


def entry_from_view(dataset_id: str, view: dict[str, Any]) -> InventoryEntry:
    """An entry for a dataset missing from the inventory (DATASET_IDS), from its metadata."""
    owner, licence = _object(view.get("owner")), _object(view.get("license"))
    return InventoryEntry(
        id=dataset_id, name=_text(view.get("name")), owner=_text(owner.get("displayName")),
        category=_text(view.get("category")), description=_text(view.get("description")),
        license=_text(licence.get("name")), attribution=_text(view.get("attribution")),
        tags=_text(view.get("tags")), update_frequency=update_frequency(view),
        missing=("inventory row",),
    )


@dataclass(frozen=True)
class SourceMetadata:
    rows_updated_at: int | None
    update_frequency: str
    columns: tuple[Column, ...]


def update_frequency(view: dict[str, Any]) -> str:
    custom = ((view.get("metadata") or {}).get("custom_fields") or {}).get(FREQUENCY_GROUP) or {}
    return _text(custom.get(FREQUENCY_FIELD)) if isinstance(custom, dict) else ""


def metadata_from_view(view: dict[str, Any]) -> SourceMetadata:
    columns = tuple(
        Column(name=_text(c.get("name")), field_name=_text(c.get("fieldName")),
               data_type=_text(c.get("dataTypeName")), description=_text(c.get("description")))
        for c in view.get("columns") or () if isinstance(c, dict)
        # `:@computed_region_*` and other system columns are not part of the CSV: Socrata leaves the
        # computed regions out of an answer with `$order` unless `$select` names them.
        and not _text(c.get("fieldName")).startswith(":")
    )
    return SourceMetadata(_number(view.get("rowsUpdatedAt")), update_frequency(view), columns)


def build_message(entry: InventoryEntry, source: SourceMetadata, *, bucket: str, key: str,
                  version_id: str | None, size: int, rows: int, harvested_at: str) -> HarvestMessage:
    inventory = {f.name: getattr(entry, f.name) for f in fields(InventoryFields)}
    # The inventory's declared frequency; the metadata's custom field when the row has none.
    inventory["update_frequency"] = entry.update_frequency or source.update_frequency
    return HarvestMessage(
        ID=entry.id, OWNER=entry.owner, NAME=entry.name, EMAIL=entry.email, CATEGORY=entry.category,
        **inventory, bucket=bucket, key=key, version_id=version_id, size=size, rows=rows,
        harvested_at=harvested_at, source_updated_at=source.rows_updated_at, columns=source.columns,
    )
