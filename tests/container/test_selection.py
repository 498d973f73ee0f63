"""Selection rules, id checks and array-job shards (pure functions), and the snapshot run."""

from __future__ import annotations

import logging

import pytest

from container.selection import (ELIGIBLE_WHERE, id_problem, in_shard, inventory_query, select_entries,
                                 shard_of)
from container.source import entry_from_row
from local.portal import PortalServer, load_snapshot, parse_where, query_inventory


def row(uid: str, **overrides) -> dict:
    return {"uid": uid, "name": f"n {uid}", "owner": "o", "type": "dataset", "audience": "public",
            "publication_stage": "published", **overrides}


@pytest.mark.parametrize("value", ["8ffd-q6x9:0", "../x", "", "   ", None, "ABCD-1234", "abcd-12345",
                                   "abcd/1234", "abcd-1234/../../x", 42])
def test_values_that_are_not_4x4_ids_are_rejected_with_a_reason(value):
    assert id_problem(value)


def test_a_4x4_id_is_accepted():
    assert id_problem("gt2j-8ykr") is None


def test_only_public_published_datasets_with_valid_ids_are_selected_in_order_up_to_the_limit():
    rows = [row("aaaa-0001"), row("bad:0"), row("aaaa-0002", type="chart"), row("aaaa-0003", audience="private"),
            row("aaaa-0004", publication_stage="unpublished"), row("aaaa-0005"), row("aaaa-0006")]

    entries, rejected = select_entries(rows, limit=2)

    assert [e.id for e in entries] == ["aaaa-0001", "aaaa-0005"]
    assert [r.id for r in rejected] == ["bad:0", "aaaa-0002", "aaaa-0003", "aaaa-0004"]
    assert "draft" in rejected[0].reason and "chart" in rejected[1].reason


def test_a_duplicate_inventory_row_is_harvested_once_and_reported():
    entries, rejected = select_entries([row("aaaa-0001"), row("aaaa-0001", name="otro"), row("aaaa-0002")], limit=0)

    assert [e.id for e in entries] == ["aaaa-0001", "aaaa-0002"] and entries[0].name == "n aaaa-0001"
    assert [(r.id, "duplicate" in r.reason) for r in rejected] == [("aaaa-0001", True)]


def test_limit_zero_selects_every_eligible_dataset():
    entries, _ = select_entries([row(f"aaaa-{i:04d}") for i in range(2500)], limit=0)
    assert len(entries) == 2500


def test_inventory_rows_with_missing_fields_keep_going_with_empty_values():
    entry = entry_from_row({"uid": "aaaa-0001", "name": "x", "row_count": None})

    assert entry.owner == entry.email == entry.update_frequency == ""
    assert entry.declared_rows is None
    assert "contact_email" in entry.missing and "row_count" in entry.missing


def test_inventory_columns_are_read_by_name_whatever_their_order():
    a = entry_from_row({"uid": "aaaa-0001", "owner": "Entidad", "contact_email": "a@b.co", "row_count": "12"})
    b = entry_from_row(dict(reversed(list({"row_count": "12", "contact_email": "a@b.co", "owner": "Entidad",
                                           "uid": "aaaa-0001"}.items()))))
    assert a == b and a.email == "a@b.co" and a.declared_rows == 12


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_shards_of_a_selection_are_disjoint_and_cover_it(count):
    ids = [f"{i:04x}-{(i * 7919) % 10000:04d}" for i in range(3000)]
    entries, _ = select_entries([row(i) for i in ids], limit=0)

    shards = [in_shard(entries, index, count) for index in range(count)]

    seen = [e.id for shard in shards for e in shard]
    assert sorted(seen) == sorted(ids)  # covering, and no id twice: disjoint
    if count > 1:
        assert all(len(shard) > 0 for shard in shards)


def test_the_shard_of_an_id_is_stable_across_processes():
    # SHA-256, not Python's salted hash(): these values must never change.
    assert [shard_of("gt2j-8ykr", 4), shard_of("jbjy-vk9h", 4), shard_of("9ssf-i6c5", 4)] == [
        int.from_bytes(__import__("hashlib").sha256(i.encode()).digest()[:8], "big") % 4
        for i in ("gt2j-8ykr", "jbjy-vk9h", "9ssf-i6c5")]


def test_the_inventory_query_is_one_the_local_portal_and_socrata_understand():
    query = inventory_query(0, 1000)
    assert query["where"] == "type='dataset' AND audience='public' AND publication_stage='published'" == ELIGIBLE_WHERE
    assert parse_where(query["where"]) == [("type", {"dataset"}), ("audience", {"public"}),
                                           ("publication_stage", {"published"})]
    by_ids = inventory_query(0, 1000, ("gt2j-8ykr", "jbjy-vk9h"))
    assert parse_where(by_ids["where"]) == [("uid", {"gt2j-8ykr", "jbjy-vk9h"})]


def test_the_snapshot_selection_excludes_drafts_charts_private_and_unpublished_assets(harvest, settings, aws, caplog):
    portal = load_snapshot()
    with PortalServer(portal) as server, caplog.at_level(logging.WARNING, "harvester"):
        summary = harvest(settings, domain=server.url, page_size=1000)

    status = {o.id: o.status for o in summary.outcomes}
    assert status == {"8835-5baf": "harvested", "9ssf-i6c5": "harvested", "gt2j-8ykr": "harvested",
                      "jbjy-vk9h": "harvested", "8ffd-q6x9:0": "rejected"}
    assert summary.exit_code == 0
    assert any("9ssf-i6c5" in r.message and "contact_email" in r.message for r in caplog.records)
    assert query_inventory(portal.inventory, {"$where": ELIGIBLE_WHERE}) != portal.inventory


def test_dataset_limit_takes_the_first_eligible_datasets_in_uid_order(harvest, settings):
    with PortalServer(load_snapshot()) as server:
        summary = harvest(settings, domain=server.url, dataset_limit=2)
    assert [o.id for o in summary.outcomes if o.status == "harvested"] == ["8835-5baf", "9ssf-i6c5"]


def test_dataset_ids_replace_the_selection_exactly(harvest, settings):
    with PortalServer(load_snapshot()) as server:
        summary = harvest(settings, domain=server.url, dataset_ids=("jbjy-vk9h", "gt2j-8ykr"))
    assert [(o.id, o.status) for o in summary.outcomes] == [("jbjy-vk9h", "harvested"), ("gt2j-8ykr", "harvested")]


def test_an_inventory_without_a_column_the_harvester_reads_is_still_harvested(harvest, settings, aws, caplog):
    # The real inventory's columns follow the portal's metadata template (custom fields such as
    # the declared frequency): a column it drops or renames must become an empty value reported
    # as missing, as a null one does. Socrata answers 400 query.soql.no-such-column to a $select
    # naming it, which would fail the whole job.
    portal = load_snapshot()
    dropped = {"api_endpoint", "contact_email", "informacindedatos_frecuenciadeactualizacin"}
    portal.inventory = [{k: v for k, v in r.items() if k not in dropped} for r in portal.inventory]
    portal.inventory_columns = tuple(sorted({c for r in portal.inventory for c in r}))
    with PortalServer(portal) as server, caplog.at_level(logging.WARNING, "harvester"):
        summary = harvest(settings, domain=server.url, dataset_ids=("gt2j-8ykr",))
        limited = harvest(settings, domain=server.url, dataset_limit=1, force=True)

    assert [(o.id, o.status) for o in summary.outcomes] == [("gt2j-8ykr", "harvested")]
    assert [(o.id, o.status) for o in limited.outcomes] == [("8835-5baf", "harvested")]
    message = next(m for m in aws.messages() if m["ID"] == "gt2j-8ykr")
    assert message["EMAIL"] == "" and message["api_endpoint"] == "" and message["OWNER"] == "Instituto Nacional de Salud"
    assert message["update_frequency"] == "Diaria"  # from the metadata's custom field instead
    assert any("gt2j-8ykr" in r.message and "api_endpoint" in r.message for r in caplog.records)


def test_array_tasks_together_harvest_the_selection_once(harvest, settings, aws):
    outcomes = []
    with PortalServer(load_snapshot()) as server:
        for index in range(3):
            outcomes += harvest(settings, domain=server.url, shard_count=3, shard_index=index).outcomes
    harvested = sorted(o.id for o in outcomes if o.status == "harvested")
    assert harvested == ["8835-5baf", "9ssf-i6c5", "gt2j-8ykr", "jbjy-vk9h"]
    assert sorted(m["ID"] for m in aws.messages()) == harvested
