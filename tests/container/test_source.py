"""The message built from an inventory entry and the dataset's metadata (pure, no I/O)."""

from __future__ import annotations

import dataclasses
import json

from container.source import InventoryEntry, SourceMetadata, build_message, entry_from_row, metadata_from_view
from contract.messages import Column, HarvestMessage, InventoryFields

ENTRY = InventoryEntry(
    id="abcd-1234", name="Nombre", owner="Entidad", email="a@b.co", category="Salud", description="Desc",
    license="CC BY 4.0", attribution="Att", tags="a,b", created_at="2020-01-01", metadata_updated_at="2024-01-01",
    update_frequency="Mensual", declared_rows=10, declared_columns=3, audience="public",
    api_endpoint="https://x/resource/abcd-1234.json", visits=5, downloads=7, missing=("visits",))
SOURCE = SourceMetadata(rows_updated_at=1700000000, update_frequency="Anual",
                        columns=(Column(name="A", field_name="a", data_type="text"),))


def build(entry: InventoryEntry = ENTRY) -> HarvestMessage:
    return build_message(entry, SOURCE, bucket="b", key="abcd-1234/abcd-1234.csv", version_id="v1", size=99,
                         rows=10, harvested_at="2026-01-01T00:00:00Z")


def test_every_inventory_field_reaches_the_message_the_poc_ones_under_the_poc_keys():
    message = build()

    for inventory_field in dataclasses.fields(InventoryFields):
        assert getattr(message, inventory_field.name) == getattr(ENTRY, inventory_field.name), inventory_field.name
    assert ((message.ID, message.OWNER, message.NAME, message.EMAIL, message.CATEGORY)
            == ("abcd-1234", "Entidad", "Nombre", "a@b.co", "Salud"))
    assert (message.bucket, message.version_id, message.size, message.rows) == ("b", "v1", 99, 10)
    assert message.source_updated_at == 1700000000 and message.columns == SOURCE.columns
    assert HarvestMessage.from_body(message.to_body()) == message


def test_the_metadata_frequency_stands_in_when_the_inventory_row_has_none():
    assert build().update_frequency == "Mensual"
    assert build(dataclasses.replace(ENTRY, update_frequency="")).update_frequency == "Anual"


def test_half_a_surrogate_pair_from_the_portal_becomes_a_replacement_character_and_the_message_sends():
    row = json.loads('{"uid": "abcd-1234", "name": "Caf\\u00e9 \\ud83d", "tags": ["a", "\\ude00b"]}')
    view = json.loads('{"id": "abcd-1234", "columns": [{"name": "A \\ud83d", "fieldName": "a"}]}')

    entry = entry_from_row(row)
    source = metadata_from_view(view)

    assert entry.name == "Café \ufffd" and entry.tags == "a,\ufffdb" and source.columns[0].name == "A \ufffd"
    message = build_message(entry, source, bucket="b", key="abcd-1234/abcd-1234.csv", version_id=None, size=1,
                            rows=0, harvested_at="2026-01-01T00:00:00Z")
    assert HarvestMessage.from_body(message.to_body()).NAME == "Café \ufffd"


def test_an_inventory_number_that_is_not_a_whole_number_is_kept_empty():
    row = {"uid": "abcd-1234", "visits": "1e999", "downloads": "Infinity", "row_count": "NaN", "column_count": "12.0"}

    entry = entry_from_row(row)

    assert (entry.visits, entry.downloads, entry.declared_rows, entry.declared_columns) == (None, None, None, 12)


def test_a_number_beyond_what_dynamodb_holds_is_kept_empty():
    entry = entry_from_row({"uid": "abcd-1234", "visits": "1e40", "downloads": "9e37"})

    assert (entry.visits, entry.downloads) == (None, int(9e37))
    assert metadata_from_view({"rowsUpdatedAt": "1e40"}).rows_updated_at is None
