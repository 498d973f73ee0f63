"""Scores a dataset against the MinTIC open-data quality criteria (0-10 each). Pure: no AWS.

    report = evaluate(chunks_or_stream, dataset, now)   # dataset: contract.messages.HarvestMessage
    python -m handlers.quality some.csv [--metadata message.json]   # prints the scores as a table

The data pass is `handlers.csvprofile`; this module turns its counts and the portal metadata
into criteria. Every formula, constant and choice is documented in docs/criteria.md: keep the two
in step.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterable

if __package__ in (None, ""):  # `python handlers/quality.py`: make `contract` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contract.messages import Column, HarvestMessage  # noqa: E402
from handlers.codes import code_kind  # noqa: E402
from handlers.csvprofile import CsvProfile, profile_csv  # noqa: E402

# Declared update frequency -> days allowed since the last data update (the guide's table;
# "bimestral" added). Keys are as `frequency_key` leaves them (lower case, no accents, no
# trailing punctuation, adverbs as adjectives).
FREQUENCY_DAYS = {
    "diaria": 1, "semanal": 7, "quincenal": 15, "mensual": 31, "bimestral": 62, "trimestral": 92,
    "cuatrimestral": 124, "semestral": 182, "anual": 366,
}
# Other spellings of those schedules: the masculine form, and real time, which gets the shortest
# allowance there is (a day).
FREQUENCY_ALIASES = {"diario": "diaria", "tiempo real": "diaria", "en tiempo real": "diaria"}
# Declared frequencies with no schedule to keep: never late, scored 10 (a choice, docs/criteria.md).
NO_SCHEDULE = {"no aplica", "n/a", "na", "unica vez", "solo una vez", "nunca", "mas de tres anos",
               "cuando se requiera", "cuando se requiere", "a demanda"}
MIN_ROWS = 50  # ERR005
MIN_COLUMNS = 3  # ERR008
SPARSE_COLUMN = 0.5  # a column more than half empty is penalised (completitud)
OBJECT_MISSING = "object_missing"  # the issue of a report on an object that could not be read
NULL_VERSION = "null"  # S3's version id of an object stored while versioning was off

# Sensitive column-name terms and their risk (confidencialidad). Matched on whole words of the
# normalised name; `nombre` only when the name is not about a place or an organisation, `edad`
# only when it is not about a unit of measure (`Unidad de medida de edad` holds years/months/days).
SENSITIVE_TERMS = (
    (3, ("cedula", "documento", "identificacion", "pasaporte", "nit")),
    (2, ("correo", "email", "e-mail", "telefono", "celular", "direccion")),
    (1, ("nombre", "nombres", "apellido", "apellidos", "edad", "nacimiento")),
)
NOT_A_PERSON = ("departamento", "municipio", "pais", "entidad", "empresa", "grupo", "proyecto",
                "programa", "institucion", "establecimiento", "sede", "ciudad", "region",
                "vereda", "barrio", "producto", "contratista", "proveedor", "etnico", "dependencia")
NOT_AN_AGE = ("unidad", "medida")
# `unnamed_column`, `unnamed_column_1`, `unnamed_1`: SODA's field names of Socrata's "Unnamed Column".
GENERIC_NAME = re.compile(r"^(unnamed((: ?|[ _])\d+|[ _]column.*)?|col(umn|umna)?[ _-]?\d*|field[ _-]?\d*|"
                          r"campo[ _-]?\d*|var[ _-]?\d*|\d+|.)$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
YEAR = re.compile(r"\b(19|20)\d{2}\b")

ERROR_CODES = {
    "ERR004": "empty dataset (no data rows)",
    "ERR005": f"fewer than {MIN_ROWS} rows",
    "ERR008": f"fewer than {MIN_COLUMNS} columns",
    "ERR015": "out of date for its declared update frequency",
}


@dataclass(frozen=True)
class Criterion:
    name: str
    score: float  # 0-10, rounded to 2 decimals
    inputs: dict[str, Any] = field(default_factory=dict)  # the figures the score was computed from


@dataclass(frozen=True)
class QualityReport:
    dataset_id: str
    evaluated_at: str  # ISO 8601, UTC
    score: float  # mean of the criteria
    criteria: tuple[Criterion, ...]
    error_codes: tuple[str, ...]
    issues: tuple[str, ...]  # problems found in the file itself (not guide codes)
    counts: dict[str, Any]

    def criterion(self, name: str) -> Criterion:
        return next(c for c in self.criteria if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(source: Iterable[bytes] | BinaryIO, dataset: HarvestMessage, now: datetime) -> QualityReport:
    """Profile the CSV once (bytes chunks or a binary stream) and score it."""
    return score(profile_csv(source, column_types(dataset), column_codes(dataset)), dataset, now)


def declared_columns(dataset: HarvestMessage) -> dict[str, Column]:
    """Declared columns by header name: the full export heads them with display names, SODA's
    `/resource/{id}.csv` (the stored form) with field names, so a field name wins a clash."""
    by_header = {column.name: column for column in dataset.columns if column.name}
    by_header.update({column.field_name: column for column in dataset.columns if column.field_name})
    return by_header


def column_types(dataset: HarvestMessage) -> dict[str, str]:
    """Declared types by header name."""
    return {name: column.data_type.lower() for name, column in declared_columns(dataset).items() if column.data_type}


def column_codes(dataset: HarvestMessage) -> dict[str, str]:
    """DIVIPOLA code columns by header name, judged by the display name (SODA's field name for
    `Código DIVIPOLA departamento` is just `departamento`)."""
    return {name: kind for name, column in declared_columns(dataset).items()
            if (kind := code_kind(column.name) or code_kind(column.field_name))}


def display_names(header: Iterable[str], dataset: HarvestMessage) -> list[str]:
    """Each header cell as the portal shows it: a declared column's display name (SODA's field
    name `n_mero_de_c_dula` lost the accents that words are matched on), else the header itself."""
    declared = declared_columns(dataset)
    return [declared[h].name if h in declared and declared[h].name else h for h in header]


def missing_columns(p: CsvProfile, dataset: HarvestMessage) -> list[str]:
    """Declared columns absent from the file: SODA omits columns with no values at all."""
    present = {_norm(h) for h in p.header}
    return [c.name for c in dataset.columns if _norm(c.name) not in present and _norm(c.field_name) not in present]


def score(profile: CsvProfile | None, dataset: HarvestMessage, now: datetime) -> QualityReport:
    """Criteria from a profile; `profile=None` means the object could not be read at all."""
    p = profile or profile_csv([])
    available = profile is not None
    criteria = tuple(c for c in (
        completitud(p, dataset),
        unicidad(p),
        actualidad(dataset, now),
        conformidad(p),
        exactitud(p, dataset),
        consistencia(p),
        comprensibilidad(p, dataset),
        trazabilidad(dataset, available),
        credibilidad(dataset),
        confidencialidad(p, dataset),
        portabilidad(p, available),
        disponibilidad(p, dataset, available),
        accesibilidad(dataset),
        relevancia(p, dataset),
        recuperabilidad(dataset, available),
    ) if c is not None)
    codes = []
    if p.rows == 0:
        codes.append("ERR004")
    elif p.rows < MIN_ROWS:
        codes.append("ERR005")
    # The dataset's columns, as completitud counted them; nothing to count when the object is missing.
    missing = next(c for c in criteria if c.name == "completitud").inputs["missing_columns"]
    if profile is not None and p.columns + len(missing) < MIN_COLUMNS:
        codes.append("ERR008")
    if next(c for c in criteria if c.name == "actualidad").inputs.get("out_of_date"):
        codes.append("ERR015")
    issues = []
    if profile is None:
        issues.append(OBJECT_MISSING)
    if not p.utf8:
        issues.append("not_utf8")
    if p.ragged_rows:
        issues.append("ragged_rows")
    if p.dropped_records:
        issues.append("dropped_records")
    counts = {"rows": p.rows, "columns": p.columns, "bytes": p.bytes_read, "duplicate_rows": p.duplicate_rows,
              "empty_cells": sum(p.empty_cells), "ragged_rows": p.ragged_rows, "blank_lines": p.blank_lines,
              "dropped_records": p.dropped_records, "invalid_utf8": p.invalid_utf8, "sampled_rows": p.sampled_rows}
    return QualityReport(
        dataset_id=dataset.ID, evaluated_at=_iso(now),
        score=_round(sum(c.score for c in criteria) / len(criteria)), criteria=criteria,
        error_codes=tuple(codes), issues=tuple(issues), counts=counts,
    )


# The criteria (docs/criteria.md has each formula).
def completitud(p: CsvProfile, dataset: HarvestMessage) -> Criterion:
    missing = missing_columns(p, dataset)
    columns = p.columns + len(missing)
    cells = p.rows * columns
    empty = sum(p.empty_cells) + p.rows * len(missing)
    sparse = sum(1 for e in p.empty_cells if p.rows and e / p.rows > SPARSE_COLUMN) + (len(missing) if p.rows else 0)
    value = 0.0 if not cells else 10 * (1 - empty / cells) * (1 - 0.5 * sparse / columns)
    return Criterion("completitud", _round(value), {"cells": cells, "empty_cells": empty,
                                                    "sparse_columns": sparse, "missing_columns": missing})


def unicidad(p: CsvProfile) -> Criterion:
    if not p.rows:
        return Criterion("unicidad", 0.0, {"rows": 0})
    # No header cells (a first line that parses to none) means no column can repeat another.
    repeated = len(p.duplicate_columns) / p.columns if p.columns else 0.0
    value = 10 * (1 - p.duplicate_rows / p.rows) * (1 - repeated)
    return Criterion("unicidad", _round(value), {"rows": p.rows, "duplicate_rows": p.duplicate_rows,
                                                 "duplicate_columns": list(p.duplicate_columns)})


def frequency_key(declared: str) -> str:
    """A declared frequency as FREQUENCY_DAYS and NO_SCHEDULE spell it: no accents, lower case,
    single spaces, no trailing punctuation (`Anual.`), an adverb as its adjective (`Mensualmente`:
    the Spanish adverb is the feminine adjective + "mente"), aliases resolved (`Diario`)."""
    key = " ".join(_norm(declared).split()).rstrip(" .;:,!")
    key = key.removesuffix("mente")
    return FREQUENCY_ALIASES.get(key, key)


def actualidad(dataset: HarvestMessage, now: datetime) -> Criterion:
    declared = " ".join((dataset.update_frequency or "").split())
    frequency = frequency_key(declared)
    inputs: dict[str, Any] = {"frequency": dataset.update_frequency, "source_updated_at": dataset.source_updated_at}
    if frequency in NO_SCHEDULE:
        return Criterion("actualidad", 10.0, inputs)
    allowed = FREQUENCY_DAYS.get(frequency)
    if allowed is None:
        # Not "out of date" (no ERR015): the dataset cannot be shown current against an unknown schedule.
        inputs["reason"] = f"unrecognised frequency: {declared}" if declared else "no declared frequency"
        return Criterion("actualidad", 0.0, inputs)
    if dataset.source_updated_at is None:
        inputs["reason"] = "no data update time"
        return Criterion("actualidad", 0.0, inputs)
    age_days = (now.timestamp() - dataset.source_updated_at) / 86400
    out_of_date = age_days > allowed
    inputs.update(allowed_days=allowed, age_days=round(age_days, 4), out_of_date=out_of_date)
    return Criterion("actualidad", 0.0 if out_of_date else 10.0, inputs)


def conformidad(p: CsvProfile) -> Criterion | None:
    """DIVIPOLA codes on the sample; None (not scored) when no column holds one."""
    checked, valid = sum(p.code_checked), sum(p.code_valid)
    if not checked:
        return None
    wrong = checked - valid
    return Criterion("conformidad", _round(10 * math.exp(-5 * wrong / checked)), {
        "code_list": "DIVIPOLA (DANE)", "checked_cells": checked, "nonconforming_cells": wrong,
        "by_column": {h: [v, c] for h, c, v in zip(p.header, p.code_checked, p.code_valid) if c}})


def consistencia(p: CsvProfile) -> Criterion | None:
    """Municipality within its row's department, on the sample; None (not scored) without a pair."""
    if not p.code_pairs:
        return None
    return Criterion("consistencia", _round(10 * p.code_pairs_consistent / p.code_pairs), {
        "rule": "the municipality code lies in the row's department", "rows_checked": p.code_pairs,
        "consistent_rows": p.code_pairs_consistent})


def exactitud(p: CsvProfile, dataset: HarvestMessage) -> Criterion | None:
    """None (not scored) without a data row: no value to be exact or not (ERR004 says why)."""
    if not p.rows:
        return None
    checked, valid = sum(p.type_checked), sum(p.type_valid)
    inputs = {"checked_cells": checked, "valid_cells": valid, "sampled_rows": p.sampled_rows,
              "by_column": {h: [v, c] for h, c, v in zip(p.header, p.type_checked, p.type_valid) if c}}
    if not dataset.columns:
        inputs["reason"] = "no declared column types"
        return Criterion("exactitud", 0.0, inputs)
    return Criterion("exactitud", _round(10 * valid / checked if checked else 10.0), inputs)


def comprensibilidad(p: CsvProfile, dataset: HarvestMessage) -> Criterion:
    names = [name for name in display_names(p.header, dataset) if _meaningful(name)]
    described = [c for c in dataset.columns if c.description.strip()]
    name_share = len(names) / p.columns if p.columns else 0.0
    described_share = len(described) / len(dataset.columns) if dataset.columns else 0.0
    title_ok = len(dataset.NAME.strip()) > 20
    description_ok = len(dataset.description.strip()) > 60 and _norm(dataset.description) != _norm(dataset.NAME)
    value = 10 * (name_share + described_share + title_ok + description_ok) / 4
    return Criterion("comprensibilidad", _round(value), {
        "meaningful_names": len(names), "columns": p.columns, "described_columns": len(described),
        "declared_columns": len(dataset.columns), "title_over_20": title_ok, "description_over_60": description_ok})


TRACEABILITY_FIELDS = ("created_at", "metadata_updated_at", "source_updated_at", "update_frequency",
                       "description", "attribution", "OWNER")


def trazabilidad(dataset: HarvestMessage, available: bool) -> Criterion:
    filled = [name for name in TRACEABILITY_FIELDS if getattr(dataset, name) not in (None, "")]
    versioned = _kept_version(dataset, available)  # "audited access": the same signal as recuperabilidad
    no_year = not YEAR.search(dataset.NAME)
    value = 10 * (0.75 * len(filled) / len(TRACEABILITY_FIELDS) + 0.20 * versioned + 0.05 * no_year)
    return Criterion("trazabilidad", _round(value), {
        "filled_fields": filled, "fields": len(TRACEABILITY_FIELDS), "versioned": versioned,
        "title_without_year": no_year})


def credibilidad(dataset: HarvestMessage) -> Criterion:
    checks = {
        "entity": bool((dataset.attribution or dataset.OWNER).strip()),
        "contact_email": bool(EMAIL.match(dataset.EMAIL.strip())),
        "license": bool(dataset.license.strip()),
    }
    return Criterion("credibilidad", _round(10 * sum(checks.values()) / len(checks)), checks)


def sensitivity(name: str) -> int:
    """The risk of one column name: its highest sensitive term, 0 without one."""
    words = set(re.split(r"[^a-z0-9-]+", _norm(name)))
    if words & set(NOT_A_PERSON):  # `Nombre municipio`: a place's name, not a person's
        words -= {"nombre", "nombres"}
    if words & set(NOT_AN_AGE):  # `Unidad de medida de edad`: a unit code, not an age
        words.discard("edad")
    return next((risk for risk, terms in SENSITIVE_TERMS if words & set(terms)), 0)


def confidencialidad(p: CsvProfile, dataset: HarvestMessage) -> Criterion | None:
    """None (not scored) without a header: no column seen, so none judged (a missing or empty object)."""
    if not p.header:
        return None
    risky = {name: risk for name in display_names(p.header, dataset) if (risk := sensitivity(name))}
    value = max(0, 10 - sum(risky.values()))
    return Criterion("confidencialidad", float(value), {"sensitive_columns": risky})


def portabilidad(p: CsvProfile, available: bool) -> Criterion:
    records = p.rows + p.dropped_records
    inputs = {"utf8": p.utf8, "ragged_rows": p.ragged_rows, "dropped_records": p.dropped_records,
              "records": records}
    if not available or not p.columns:
        return Criterion("portabilidad", 0.0, inputs)
    consistent = 1 - (p.ragged_rows + p.dropped_records) / records if records else 1.0
    value = 10 * (1.0 if p.utf8 else 0.5) * consistent
    return Criterion("portabilidad", _round(value), inputs)


def disponibilidad(p: CsvProfile, dataset: HarvestMessage, available: bool) -> Criterion:
    checks: dict[str, Any] = {"object_read": available, "size_matches": available and p.bytes_read == dataset.size}
    if dataset.declared_rows is not None:
        checks["rows_match_portal"] = available and p.rows == dataset.declared_rows
    passed = sum(1 for v in checks.values() if v is True)
    return Criterion("disponibilidad", _round(10 * passed / len(checks)),
                     {**checks, "bytes": p.bytes_read, "harvested_bytes": dataset.size,
                      "rows": p.rows, "declared_rows": dataset.declared_rows})


def accesibilidad(dataset: HarvestMessage) -> Criterion:
    audience = getattr(dataset, "audience", "")
    endpoint = getattr(dataset, "api_endpoint", "")
    checks = {"public": audience.strip().lower() == "public", "api_endpoint": bool(endpoint.strip())}
    return Criterion("accesibilidad", _round(10 * sum(checks.values()) / len(checks)), checks)


def relevancia(p: CsvProfile, dataset: HarvestMessage) -> Criterion:
    """The guide's (category + min(rows/50, 1)) / 2, plus downloads per visit as a third term when
    the inventory counted visits (its "downloads vs views")."""
    terms = {"category": 1.0 if dataset.CATEGORY.strip() else 0.0, "rows": min(p.rows / MIN_ROWS, 1.0)}
    visits, downloads = dataset.visits or 0, dataset.downloads
    if visits > 0 and downloads is not None:  # no visits: no ratio to judge
        terms["downloads_per_visit"] = min(downloads / visits, 1.0)
    return Criterion("relevancia", _round(10 * sum(terms.values()) / len(terms)), {
        "category": dataset.CATEGORY, "rows": p.rows, "visits": dataset.visits, "downloads": dataset.downloads,
        "terms": {name: round(value, 4) for name, value in terms.items()}})


def recuperabilidad(dataset: HarvestMessage, available: bool) -> Criterion:
    """10 when the evaluated object is a kept S3 version (a versioned bucket keeps every harvest;
    the DynamoDB item per HASH + ID keeps its history), else 0: also when S3 could not give that
    version back (it was deleted: nothing was kept to recover)."""
    versioned = _kept_version(dataset, available)
    return Criterion("recuperabilidad", 10.0 if versioned else 0.0,
                     {"version_id": dataset.version_id, "versioned": versioned})


# Helpers.
def _kept_version(dataset: HarvestMessage, available: bool) -> bool:
    # "null" is the version of an object put while versioning was off: the next put replaces it.
    # Not `available`: S3 could not give the version back (deleted), so it was not kept.
    return available and bool(dataset.version_id) and dataset.version_id != NULL_VERSION


def _norm(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip().lower()


def _meaningful(name: str) -> bool:
    normalised = _norm(name)
    return bool(normalised) and any(c.isalpha() for c in normalised) and not GENERIC_NAME.match(normalised)


def _round(value: float) -> float:
    return round(min(max(value, 0.0), 10.0), 2)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_table(report: QualityReport) -> str:
    lines = [f"{'criterion':<18} {'score':>6}  inputs", f"{'-' * 18} {'-' * 6}  {'-' * 40}"]
    for c in report.criteria:
        inputs = json.dumps(c.inputs, ensure_ascii=False, default=str)
        lines.append(f"{c.name:<18} {c.score:>6.2f}  {inputs[:160]}")
    lines.append(f"{'overall':<18} {report.score:>6.2f}")
    lines.append(f"error codes: {', '.join(report.error_codes) or 'none'}")
    lines.append(f"issues: {', '.join(report.issues) or 'none'}")
    lines.append(f"counts: {json.dumps(report.counts)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handlers.quality", description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="the CSV file to score")
    parser.add_argument("--metadata", type=Path,
                        help="the dataset's harvest message (the SQS body, JSON); without it metadata "
                             "criteria score what an undocumented dataset would")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    args = parser.parse_args(argv)
    if args.metadata:
        dataset = HarvestMessage.from_body(args.metadata.read_text(encoding="utf-8"))
    else:
        dataset_id = args.csv.stem if re.fullmatch(r"[a-z0-9]{4}-[a-z0-9]{4}", args.csv.stem) else "xxxx-xxxx"
        dataset = HarvestMessage(ID=dataset_id, OWNER="", NAME="", EMAIL="", CATEGORY="", bucket="", key="",
                                 version_id=None, size=args.csv.stat().st_size, rows=0, harvested_at="",
                                 source_updated_at=None)
    with args.csv.open("rb") as stream:
        report = evaluate(stream, dataset, datetime.now(timezone.utc))
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
