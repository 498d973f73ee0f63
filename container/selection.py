"""Which datasets a task harvests: the inventory query, the eligibility rules, the id checks and
the array-job shard. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from contract import is_dataset_id

from container.source import InventoryEntry, entry_from_row

# Public, published datasets: the portal filters, and `eligibility_problem` checks again, so a
# portal that ignores $where cannot make the job harvest charts or private assets.
ELIGIBLE = {"type": "dataset", "audience": "public", "publication_stage": "published"}
ELIGIBLE_WHERE = " AND ".join(f"{column}='{value}'" for column, value in ELIGIBLE.items())
INVENTORY_ORDER = "uid"  # a stable order, so "the first DATASET_LIMIT" means the same datasets
INVENTORY_PAGE = 1000


@dataclass(frozen=True)
class Rejected:
    id: str
    reason: str


def id_problem(value: Any) -> str | None:
    """Why a value cannot be a dataset id (and must never reach an S3 key), or None."""
    if not isinstance(value, str) or not value.strip():
        return "empty id"
    if ":" in value:
        return f"{value!r} is a draft or a version, not a published dataset id"
    if not is_dataset_id(value):
        return f"{value!r} is not a Socrata 4x4 dataset id"
    return None


def eligibility_problem(row: dict[str, Any]) -> str | None:
    for column, wanted in ELIGIBLE.items():
        if row.get(column) != wanted:
            return f"{column} is {row.get(column)!r}, not {wanted!r}"
    return None


def inventory_query(offset: int, limit: int, ids: Sequence[str] = ()) -> dict[str, Any]:
    """SoQL of one inventory page: the eligible datasets, or exactly `ids` (already validated).

    No `$select`: every column comes, and `entry_from_row` reads the ones it knows by name. Socrata
    answers a `$select` naming a column the inventory lacks with 400 query.soql.no-such-column,
    so one column dropped or renamed by the portal (its custom fields follow the portal's
    metadata template) would fail the whole job instead of leaving that value empty."""
    where = f"uid in ({', '.join(repr(i) for i in ids)})" if ids else ELIGIBLE_WHERE
    return {"where": where, "order": INVENTORY_ORDER, "limit": limit, "offset": offset}


def select_entries(rows: Iterable[dict[str, Any]], limit: int) -> tuple[list[InventoryEntry], list[Rejected]]:
    """The first `limit` (0: all) eligible rows with valid ids, in the given order, plus the rows
    rejected with a reason. Stops reading `rows` once the limit is reached."""
    entries: list[InventoryEntry] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for row in rows:
        uid = row.get("uid", "")
        problem = id_problem(uid) or eligibility_problem(row)
        if problem:
            rejected.append(Rejected(str(uid or ""), problem))
            continue
        if uid in seen:  # harvested once, from its first row; the other row is reported, not dropped
            rejected.append(Rejected(uid, "a duplicate inventory row: this id is harvested once, from its first row"))
            continue
        seen.add(uid)
        entries.append(entry_from_row(row))
        if limit and len(entries) >= limit:
            break
    return entries, rejected


def shard_of(dataset_id: str, shard_count: int) -> int:
    """A stable shard (SHA-256 of the id, not Python's per-process `hash`), so every task of an
    array job agrees on who harvests what."""
    digest = hashlib.sha256(dataset_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def in_shard(entries: Iterable[InventoryEntry], index: int, count: int) -> list[InventoryEntry]:
    return [e for e in entries if count == 1 or shard_of(e.id, count) == index]
