"""The harvest message and the notification: what both sides of each queue agree on."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest

from contract import CRITERIA_KEY_PATTERN, DATASET_KEY_PATTERN, criteria_key, dataset_key, is_dataset_id
from contract.messages import Column, DatasetNotification, HarvestMessage, InvalidMessage

MESSAGE = HarvestMessage(
    ID="gt2j-8ykr", OWNER="Instituto Nacional de Salud", NAME="Casos positivos", EMAIL="a@b.co",
    CATEGORY="Salud", bucket="arti4207-poc-2023", key="gt2j-8ykr/gt2j-8ykr.csv", version_id="v1",
    size=123, rows=4, harvested_at="2026-11-27T00:00:00+00:00", source_updated_at=1700000000,
    update_frequency="Diaria", columns=(Column("Edad", "edad", "number", "años"),),
)


def test_a_message_survives_the_queue_unchanged():
    assert HarvestMessage.from_body(MESSAGE.to_body()) == MESSAGE


def test_the_poc_keys_lead_the_body_as_in_the_poc():
    assert list(json.loads(MESSAGE.to_body()))[:5] == ["ID", "OWNER", "NAME", "EMAIL", "CATEGORY"]


def test_accents_travel_as_text_not_escapes():
    body = HarvestMessage(**{**MESSAGE.__dict__, "NAME": "Año de publicación ñ"}).to_body()
    assert "Año de publicación ñ" in body


# What SQS SendMessage and SNS Publish accept (botocore's SendMessage documentation).
SQS_CHARACTERS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def test_characters_sqs_refuses_travel_escaped_and_arrive_unchanged():
    text = "Datos\uffff \ufffe\x0b\x00 fin 😀"
    message = HarvestMessage(**{**MESSAGE.__dict__, "NAME": text})
    notification = DatasetNotification(HASH="a" * 64, processed_at="2026-11-27T00:00:01+00:00", dataset=message)
    assert SQS_CHARACTERS.fullmatch(message.to_body()) and SQS_CHARACTERS.fullmatch(notification.to_body())
    assert HarvestMessage.from_body(message.to_body()).NAME == text
    assert DatasetNotification.from_body(notification.to_body()).dataset.NAME == text


@pytest.mark.parametrize("body, reason", [
    ("not json", "body is not JSON"),
    ("[1, 2]", "body is not a JSON object"),
    ('{"ID": "gt2j-8ykr"}', "missing keys: OWNER, NAME"),
])
def test_malformed_bodies_are_rejected_with_the_reason(body, reason):
    with pytest.raises(InvalidMessage, match=reason):
        HarvestMessage.from_body(body)


@pytest.mark.parametrize("field, value, reason", [
    ("ID", "8ffd-q6x9:0", "ID is not a Socrata dataset id"),
    ("ID", "../etc", "ID is not a Socrata dataset id"),
    ("bucket", "", "bucket must be a non-empty string"),
    ("size", -1, "size must be a non-negative integer"),
    ("rows", True, "rows must be a non-negative integer"),
    ("columns", [{"nombre": "x"}], "columns:"),
    # Counts the criteria compare and subtract: a string would fail the evaluation itself.
    ("visits", "120", "visits must be a whole number below 1e38 or null"),
    ("source_updated_at", "2024-01-31T00:00:00.000", "source_updated_at must be a whole number below 1e38 or null"),
    ("declared_rows", 1.5, "declared_rows must be a whole number below 1e38 or null"),
    # More digits than a DynamoDB number holds: the item could never be written.
    ("downloads", 10**38, "downloads must be a whole number below 1e38 or null"),
    ("rows", 10**40, "rows must be a non-negative integer below 1e38"),
])
def test_invalid_fields_are_rejected_with_the_field_named(field, value, reason):
    data = {**json.loads(MESSAGE.to_body()), field: value}
    with pytest.raises(InvalidMessage, match=reason):
        HarvestMessage.from_dict(data)


def test_null_text_arrives_as_empty_text():
    data = {**json.loads(MESSAGE.to_body()), "description": None, "license": None, "OWNER": None, "visits": None}
    message = HarvestMessage.from_dict(data)
    assert (message.description, message.license, message.OWNER, message.visits) == ("", "", "", None)


def test_the_notification_carries_the_harvest_message_and_the_hash():
    notification = DatasetNotification(HASH="a" * 64, processed_at="2026-11-27T00:00:01+00:00", dataset=MESSAGE)
    parsed = DatasetNotification.from_body(notification.to_body())
    assert parsed == notification and parsed.ID == "gt2j-8ykr"
    with pytest.raises(InvalidMessage, match="HASH is not a SHA-256"):
        DatasetNotification.from_body(json.dumps({**json.loads(notification.to_body()), "HASH": "abc"}))


@pytest.mark.parametrize("value", ["gt2j-8ykr", "uzcf-b9dh"])
def test_four_by_four_ids_are_ids(value):
    assert is_dataset_id(value)
    assert dataset_key(value) == f"{value}/{value}.csv" and criteria_key(value) == f"{value}/criteria.json"


def test_each_key_matches_only_its_own_iam_pattern():
    # IAM's `*` spans `/`, as fnmatch's does.
    assert fnmatch.fnmatchcase(dataset_key("gt2j-8ykr"), DATASET_KEY_PATTERN)
    assert not fnmatch.fnmatchcase(criteria_key("gt2j-8ykr"), DATASET_KEY_PATTERN)
    assert fnmatch.fnmatchcase(criteria_key("gt2j-8ykr"), CRITERIA_KEY_PATTERN)
    assert not fnmatch.fnmatchcase(dataset_key("gt2j-8ykr"), CRITERIA_KEY_PATTERN)


@pytest.mark.parametrize("value", ["", "8ffd-q6x9:0", "../x", "GT2J-8YKR", "gt2j8ykr", None, "gt2j-8ykr/"])
def test_anything_else_never_becomes_an_s3_key(value):
    assert not is_dataset_id(value)
    with pytest.raises(ValueError):
        dataset_key(value)


def test_a_very_wide_datasets_metadata_is_shortened_to_fit_a_message():
    from contract.messages import MAX_BODY_BYTES

    columns = tuple(Column(f"Columna {i}", f"columna_{i}", "text", "descripción " * 40) for i in range(3000))
    wide = HarvestMessage(**{**MESSAGE.__dict__, "columns": columns, "description": "x" * 100_000})
    body = wide.to_body()
    parsed = HarvestMessage.from_body(body)

    assert len(body.encode()) <= MAX_BODY_BYTES
    assert parsed.truncated and len(parsed.description) == 200
    assert 0 < len(parsed.columns) < 3000 and parsed.columns[0].name == "Columna 0"
    assert parsed.ID == wide.ID and parsed.rows == wide.rows  # what identifies the data is intact
    notification = DatasetNotification(HASH="b" * 64, processed_at="2026-11-27T00:00:01+00:00", dataset=wide)
    assert len(notification.to_body().encode()) < 256 * 1024  # SNS's limit


def test_long_inventory_texts_are_shortened_to_fit_a_message_too():
    from contract.messages import MAX_BODY_BYTES

    # 600 tags of 500 characters and a 10 KB attribution: over SQS's limit with no column at all.
    long = HarvestMessage(**{**MESSAGE.__dict__, "tags": ",".join(["etiqueta" * 62] * 600),
                             "attribution": "Entidad " * 1250, "NAME": "Nombre largo " * 100})
    parsed = HarvestMessage.from_body(body := long.to_body())

    assert len(body.encode()) <= MAX_BODY_BYTES and parsed.truncated
    assert len(parsed.tags) == len(parsed.attribution) == len(parsed.NAME) == 1000
    assert (parsed.ID, parsed.key, parsed.version_id) == (long.ID, long.key, long.version_id)


def test_an_ordinary_message_is_not_shortened():
    assert not HarvestMessage.from_body(MESSAGE.to_body()).truncated
