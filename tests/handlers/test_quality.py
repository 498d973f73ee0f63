"""handlers/quality.py: each criterion on small CSVs, expected scores computed by hand."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from contract.messages import Column, HarvestMessage
from handlers.quality import evaluate, score

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
DAY = 86400


def dataset(**overrides) -> HarvestMessage:
    values: dict[str, Any] = dict(ID="abcd-1234", OWNER="Alcaldía de Cali", NAME="Contratos de obra pública del municipio",
                  EMAIL="datos@cali.gov.co", CATEGORY="Hacienda", bucket="b", key="abcd-1234/abcd-1234.csv",
                  version_id="v1", size=0, rows=0, harvested_at="2026-11-27T11:00:00Z",
                  source_updated_at=int(NOW.timestamp()) - 3 * DAY, update_frequency="Semanal",
                  description="Contratos de obra pública firmados por la alcaldía, con valor, plazo y contratista.",
                  license="CC BY-SA 4.0", attribution="Alcaldía de Santiago de Cali", tags="obras",
                  created_at="2020-01-01", metadata_updated_at="2026-11-01",
                  columns=(Column("id", "id", "number", "Identificador"), Column("valor", "valor", "number", "Valor"),
                           Column("fecha", "fecha", "calendar_date", "Fecha de firma")),
                  audience="public", api_endpoint="https://www.datos.gov.co/resource/abcd-1234.json")
    values.update(overrides)
    return HarvestMessage(**values)


def run(csv: bytes, **overrides):
    return evaluate([csv], dataset(size=len(csv), **overrides), NOW)


def scores(report) -> dict[str, float]:
    return {c.name: c.score for c in report.criteria}


def test_completitud_counts_empty_cells_and_penalises_sparse_columns():
    # 4 rows x 3 columns = 12 cells; empty: valor 3 (row 2, 3, 4), fecha 1 -> 4 empty.
    # valor is 3/4 = 75% empty (> 50%): 1 sparse column of 3.
    # 10 x (1 - 4/12) x (1 - 0.5 x 1/3) = 10 x 0.6667 x 0.8333 = 5.5556 -> 5.56
    csv = b"id,valor,fecha\n1,10,2026-01-01\n2,,2026-01-02\n3,,\n4,,2026-01-04\n"
    report = run(csv)
    assert scores(report)["completitud"] == 5.56
    assert report.criterion("completitud").inputs["empty_cells"] == 4


def test_completitud_counts_declared_columns_missing_from_the_file_as_empty():
    # The file lacks "fecha" (SODA omits all-empty columns): 2 rows x 3 columns = 6 cells, 2 empty,
    # fecha 100% empty -> sparse 1 of 3: 10 x (1 - 2/6) x (1 - 0.5/3) = 10 x 0.6667 x 0.8333 = 5.56
    report = run(b"id,valor\n1,10\n2,20\n")
    assert scores(report)["completitud"] == 5.56
    assert report.criterion("completitud").inputs["missing_columns"] == ["fecha"]


def test_unicidad_counts_duplicate_rows_and_columns():
    # 5 rows, one repeated twice -> 2 duplicates: 10 x (1 - 2/5) = 6.0; no duplicate column.
    csv = b"id,valor,fecha\n1,10,2026-01-01\n1,10,2026-01-01\n1,10,2026-01-01\n2,20,2026-01-02\n3,30,2026-01-03\n"
    assert scores(run(csv))["unicidad"] == 6.0
    # 4 distinct rows, column "copia" repeats "valor": 10 x 1 x (1 - 1/4) = 7.5
    csv = b"id,valor,copia,fecha\n1,10,10,a\n2,20,20,b\n3,30,30,c\n4,40,40,d\n"
    report = run(csv)
    assert scores(report)["unicidad"] == 7.5
    assert report.criterion("unicidad").inputs["duplicate_columns"] == ["copia"]


def test_constant_columns_are_not_duplicates_of_each_other():
    # SECOP-style flags always "No", and a column always empty: no column is a copy of another.
    csv = b"id,es_pyme,es_grupo,reversion,vacia,valor\n" + b"".join(b"%d,No,No,No,,%d\n" % (i, i * 7) for i in range(20))
    report = run(csv, columns=())
    assert report.criterion("unicidad").inputs["duplicate_columns"] == [] and scores(report)["unicidad"] == 10.0
    # Two columns that vary and agree still are.
    csv = b"id,flag,copia\n" + b"".join(b"%d,%s,%s\n" % (i, b"SiNo"[i % 2 * 2:][:2], b"SiNo"[i % 2 * 2:][:2])
                                         for i in range(20))
    assert run(csv, columns=()).criterion("unicidad").inputs["duplicate_columns"] == ["copia"]


def test_an_object_that_could_not_be_read_or_holds_no_rows_is_not_scored_on_what_it_would_hold():
    missing = score(None, dataset(), NOW)
    found = scores(missing)
    # S3 could not give the version back: nothing kept to recover, no audited access.
    assert found["recuperabilidad"] == 0.0 and missing.criterion("trazabilidad").inputs["versioned"] is False
    # No value was seen to be exact, and no column to be judged sensitive: not scored, as
    # conformidad without code columns.
    assert "exactitud" not in found and "confidencialidad" not in found
    header_only = run(b"id,valor,fecha\n")
    assert "exactitud" not in scores(header_only) and scores(header_only)["confidencialidad"] == 10.0
    assert scores(header_only)["recuperabilidad"] == 10.0


def test_unicidad_of_rows_without_header_cells_is_scored_not_divided_by_zero():
    # A first line holding only a CR parses as a record of no cells: rows but no columns (and
    # none declared, which ERR008 would count).
    report = run(b"\r\r\n1,2\n1,2\n", columns=())
    assert (report.counts["rows"], report.counts["columns"]) == (2, 0)
    assert scores(report)["unicidad"] == 5.0  # one duplicate row in 2; no columns to repeat
    assert "ERR008" in report.error_codes


@pytest.mark.parametrize("frequency, age_days, expected, err015", [
    ("Semanal", 3, 10.0, False),  # 3 days <= 7
    ("Semanal", 8, 0.0, True),  # 8 days > 7
    ("Mensual", 31, 10.0, False),  # exactly the allowance is still current
    ("Anual", 400, 0.0, True),
    ("No aplica", 4000, 10.0, False),
    ("", 1, 0.0, False),  # no declared frequency: cannot be current, but not "out of date" either
])
def test_actualidad_against_the_declared_frequency(frequency, age_days, expected, err015):
    report = run(b"id,valor,fecha\n1,2,2026-01-01\n",
                 update_frequency=frequency, source_updated_at=int(NOW.timestamp()) - age_days * DAY)
    assert scores(report)["actualidad"] == expected
    assert ("ERR015" in report.error_codes) is err015


def test_exactitud_checks_values_against_declared_types():
    # id: 1, 2, x3, 4 -> 3 valid of 4; valor: 10.5, "1.000,25", abc -> 2 of 3; fecha: 2026-01-01,
    # 31/12/2025 0:00:00, ayer, (empty, not checked) -> 2 of 3.  Total 7 valid of 10 checked: 7.0
    csv = (b"id,valor,fecha\n1,10.5,2026-01-01\n2,\"1.000,25\",31/12/2025 0:00:00\n"
           b"x3,abc,ayer\n4,,\n")
    report = run(csv)
    assert scores(report)["exactitud"] == 7.0
    assert report.criterion("exactitud").inputs["by_column"] == {"id": [3, 4], "valor": [2, 3], "fecha": [2, 3]}


def test_exactitud_without_declared_types_scores_zero():
    assert scores(run(b"id,valor,fecha\n1,2,3\n", columns=()))["exactitud"] == 0.0


def test_comprensibilidad_from_names_descriptions_title_and_description():
    # names: "id", "Unnamed: 1", "fecha" -> 2 of 3 meaningful; described: 2 of 3 declared columns;
    # title 39 chars > 20: 1; description 78 chars > 60: 1.  10 x (2/3 + 2/3 + 1 + 1) / 4 = 8.33
    columns = (Column("id", "id", "number", "Identificador"), Column("Unnamed: 1", "unnamed_1", "text", ""),
               Column("fecha", "fecha", "calendar_date", "Fecha"))
    report = run(b"id,Unnamed: 1,fecha\n1,2,2026-01-01\n", columns=columns)
    assert scores(report)["comprensibilidad"] == 8.33


def test_trazabilidad_weights_fields_versioning_and_a_title_without_year():
    # All 7 fields filled, versioned, title without a year: 10 x (0.75 + 0.20 + 0.05) = 10.
    assert scores(run(b"id,valor,fecha\n1,2,3\n"))["trazabilidad"] == 10.0
    # description and created_at missing (5/7), unversioned, title with "2024":
    # 10 x (0.75 x 5/7 + 0 + 0) = 5.357 -> 5.36
    report = run(b"id,valor,fecha\n1,2,3\n", description="", created_at="", version_id=None,
                 NAME="Contratos 2024 de la alcaldía de Cali")
    assert scores(report)["trazabilidad"] == 5.36


def test_credibilidad_needs_entity_valid_email_and_licence():
    assert scores(run(b"id,valor,fecha\n1,2,3\n"))["credibilidad"] == 10.0
    # e-mail without a domain and no licence: 1 of 3 -> 3.33
    assert scores(run(b"id,valor,fecha\n1,2,3\n", EMAIL="datos@", license=""))["credibilidad"] == 3.33


def test_confidencialidad_subtracts_risk_of_sensitive_column_names():
    # cédula 3 + correo 2 + "Nombre" (a person) 1 = 6 -> 4; "Nombre municipio" is a place: 0.
    csv = "Número de cédula,Correo electrónico,Nombre,Nombre municipio\n1,a@b.co,Ana,Cali\n".encode()
    report = run(csv)
    assert scores(report)["confidencialidad"] == 4.0
    assert set(report.criterion("confidencialidad").inputs["sensitive_columns"]) == {
        "Número de cédula", "Correo electrónico", "Nombre"}


def test_portabilidad_penalises_undecodable_bytes_and_ragged_rows():
    assert scores(run(b"id,valor,fecha\n1,2,3\n2,3,4\n"))["portabilidad"] == 10.0
    # Latin-1 "Á": 10 x 0.5 = 5.0
    report = run(b"id,valor,fecha\n1,BOGOT\xc1,3\n2,3,4\n")
    assert scores(report)["portabilidad"] == 5.0 and "not_utf8" in report.issues
    assert report.counts["invalid_utf8"] == 1
    # 1 ragged record of 4: 10 x (1 - 1/4) = 7.5
    assert scores(run(b"id,valor,fecha\n1,2,3\n2,3\n3,4,5\n4,5,6\n"))["portabilidad"] == 7.5


def test_disponibilidad_compares_with_the_harvest_and_the_portal():
    csv = b"id,valor,fecha\n1,2,3\n2,3,4\n"
    assert scores(run(csv, declared_rows=2))["disponibilidad"] == 10.0
    # The portal declares 1000 rows, 2 arrived (the PoC's lost pages): 2 of 3 checks -> 6.67
    assert scores(run(csv, declared_rows=1000))["disponibilidad"] == 6.67
    missing = score(None, dataset(), NOW)
    assert scores(missing)["disponibilidad"] == 0.0 and missing.issues == ("object_missing",)


def test_accesibilidad_needs_public_audience_and_api_endpoint():
    assert scores(run(b"id,valor,fecha\n1,2,3\n"))["accesibilidad"] == 10.0
    assert scores(run(b"id,valor,fecha\n1,2,3\n", audience="private"))["accesibilidad"] == 5.0


def test_error_codes_for_size_thresholds():
    # No declared columns: ERR008 counts the file's.
    assert run(b"", columns=()).error_codes == ("ERR004", "ERR008")
    assert run(b"id,valor,fecha\n").error_codes == ("ERR004",)
    assert run(b"id,valor\n1,2\n", columns=()).error_codes == ("ERR005", "ERR008")
    # The 3 declared columns, all left out of an empty object, are still the dataset's.
    assert run(b"").error_codes == ("ERR004",)
    fifty = b"id,valor,fecha\n" + b"".join(b"%d,1,2026-01-01\n" % i for i in range(50))
    assert run(fifty).error_codes == ()


DIVIPOLA_COLUMNS = (Column("Código DIVIPOLA departamento", "departamento", "number"),
                    Column("Código DIVIPOLA municipio", "ciudad_municipio", "number"),
                    Column("valor", "valor", "number"))


def test_conformidad_and_consistencia_check_divipola_codes_named_by_the_metadata():
    # SODA headers are field names; the display names say which columns hold DIVIPOLA codes.
    csv = b"departamento,ciudad_municipio,valor\n11,11001,1\n76,76111,2\n13001,13001,3\n76,5001,4\n"
    report = run(csv, columns=DIVIPOLA_COLUMNS)

    # 8 code cells, one not conforming (a municipality code in the department column):
    # 10 x exp(-5 x 1/8) = 5.35. Rows with both codes conforming: 3; 5001 (Medellín) is not in 76.
    assert scores(report)["conformidad"] == 5.35
    assert report.criterion("conformidad").inputs["by_column"] == {"departamento": [3, 4], "ciudad_municipio": [4, 4]}
    assert scores(report)["consistencia"] == 6.67
    assert [c.name for c in report.criteria][3:6] == ["conformidad", "exactitud", "consistencia"]


def test_conformidad_and_consistencia_are_not_scored_without_code_columns():
    names = set(scores(run(b"id,valor,fecha\n1,2,3\n")))
    assert not names & {"conformidad", "consistencia"} and len(names) == 13
    # Codes but no pair (only a department column): conformidad alone.
    names = set(scores(run(b"cod_dpto,valor,x\n11,2,3\n")))
    assert "conformidad" in names and "consistencia" not in names


def test_overall_score_is_the_mean_of_the_criteria():
    for report in (run(b"id,valor,fecha\n1,2,2026-01-01\n"),
                   run(b"departamento,ciudad_municipio,valor\n11,11001,1\n", columns=DIVIPOLA_COLUMNS)):
        assert report.score == round(sum(c.score for c in report.criteria) / len(report.criteria), 2)


def test_command_line_prints_a_table(tmp_path: Path):
    path = tmp_path / "gt2j-8ykr.csv"
    root = Path(__file__).resolve().parents[2]
    path.write_bytes((root / "local" / "snapshot" / "source" / "gt2j-8ykr-sample.csv").read_bytes())
    out = subprocess.run([sys.executable, "-m", "handlers.quality", str(path)], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    assert out.splitlines()[0].split() == ["criterion", "score", "inputs"]
    assert any(line.startswith("completitud") for line in out.splitlines())
    assert "overall" in out
    # The real sample's district codes in the department column (docs/criteria.md): 9 of 198 cells.
    [conformidad] = [line for line in out.splitlines() if line.startswith("conformidad")]
    assert conformidad.split()[1] == "7.97" and '"nonconforming_cells": 9' in conformidad


def test_same_report_from_a_stream_and_from_chunks(tmp_path: Path):
    csv = b"id,valor,fecha\n1,2,2026-01-01\n2,,2026-01-02\n"
    path = tmp_path / "x.csv"
    path.write_bytes(csv)
    with path.open("rb") as stream:
        from_stream = evaluate(stream, dataset(size=len(csv)), NOW)
    assert from_stream == run(csv)


# The stored CSV is SODA's `/resource/{id}.csv`: its header holds API field names, accents as `_`.
SODA_PERSONAL_COLUMNS = (Column("Número de cédula", "n_mero_de_c_dula", "text"), Column("Teléfono", "tel_fono", "text"),
                         Column("Dirección", "direcci_n", "text"), Column("Edad", "edad", "number"),
                         Column("Unidad de medida de edad", "unidad_medida", "number"))


def test_confidencialidad_judges_soda_field_names_by_their_metadata_display_names():
    # cédula 3 + teléfono 2 + dirección 2 + edad 1 = 8 -> 2; the unit of age is not an age.
    csv = b'"n_mero_de_c_dula","tel_fono","direcci_n","edad","unidad_medida"\n"1","2","3","4","1"\n'
    report = run(csv, columns=SODA_PERSONAL_COLUMNS)
    assert scores(report)["confidencialidad"] == 2.0
    assert report.criterion("confidencialidad").inputs["sensitive_columns"] == {
        "Número de cédula": 3, "Teléfono": 2, "Dirección": 2, "Edad": 1}


def test_confidencialidad_falls_back_to_the_header_of_an_undeclared_column():
    # "correo" is not declared: judged by its header (2); "edad" by its display name (1): 10 - 3 = 7.
    report = run(b'"correo","edad"\n"a@b.co","4"\n', columns=SODA_PERSONAL_COLUMNS)
    assert report.criterion("confidencialidad").inputs["sensitive_columns"] == {"correo": 2, "Edad": 1}
    assert scores(report)["confidencialidad"] == 7.0


@pytest.mark.parametrize("name", ["Unidad de medida de edad", "Unidad edad", "Medida de la edad"])
def test_confidencialidad_does_not_count_a_unit_of_measure_of_age_as_an_age(name):
    report = run(f"{name},valor\n1,2\n".encode(), columns=())
    assert scores(report)["confidencialidad"] == 10.0


@pytest.mark.parametrize("name", ["unnamed_column", "unnamed_column_1", "Unnamed Column", "Unnamed: 3", "unnamed_1"])
def test_comprensibilidad_counts_socrata_unnamed_columns_as_not_meaningful(name):
    report = run(f'"{name}","fecha"\n"1","2"\n'.encode(), columns=())
    assert report.criterion("comprensibilidad").inputs["meaningful_names"] == 1


def test_comprensibilidad_judges_a_declared_column_by_its_display_name():
    # Header `valor` is declared "Unnamed Column" (not meaningful); header `x` is declared
    # "Valor del contrato" (meaningful): judged by what the portal shows, not by the field name.
    unnamed = (Column("Unnamed Column", "valor", "number", "Valor"), Column("fecha", "fecha", "calendar_date", "Fecha"))
    assert run(b'"valor","fecha"\n"1","2"\n', columns=unnamed).criterion(
        "comprensibilidad").inputs["meaningful_names"] == 1
    named = (Column("Valor del contrato", "x", "number", "Valor"), Column("fecha", "fecha", "calendar_date", "Fecha"))
    assert run(b'"x","fecha"\n"1","2"\n', columns=named).criterion("comprensibilidad").inputs["meaningful_names"] == 2


def test_err008_counts_the_declared_columns_soda_left_out_of_the_file():
    # SODA omits all-empty columns: a 2-column file of a dataset declaring 3 has 3 columns.
    fifty = b'"id","valor"\n' + b"".join(b'"%d","1"\n' % i for i in range(50))
    assert run(fifty).error_codes == ()
    two_declared = (Column("id", "id", "number"), Column("valor", "valor", "number"))
    assert run(fifty, columns=two_declared).error_codes == ("ERR008",)


@pytest.mark.parametrize("overrides, expected", [
    # category 1, rows 2/50 = 0.04, downloads/visits 3/10 = 0.3: 10 x (1 + 0.04 + 0.3) / 3 = 4.47
    (dict(visits=10, downloads=3), 4.47),
    # more downloads than visits caps at 1: 10 x (1 + 0.04 + 1) / 3 = 6.8
    (dict(visits=10, downloads=30), 6.8),
    # no visits (or none recorded): two terms, 10 x (1 + 0.04) / 2 = 5.2
    (dict(visits=0, downloads=3), 5.2),
    (dict(visits=None, downloads=None), 5.2),
    # no category: 10 x (0 + 0.04 + 0.3) / 3 = 1.13
    (dict(CATEGORY=" ", visits=10, downloads=3), 1.13),
])
def test_relevancia_from_category_rows_and_downloads_per_visit(overrides, expected):
    report = run(b"id,valor,fecha\n1,2,3\n2,3,4\n", **overrides)
    assert scores(report)["relevancia"] == expected
    assert report.criterion("relevancia").inputs["rows"] == 2


def test_relevancia_rows_term_saturates_at_50_rows():
    fifty = b"id,valor,fecha\n" + b"".join(b"%d,1,2026-01-01\n" % i for i in range(60))
    assert scores(run(fifty, visits=None))["relevancia"] == 10.0


def test_recuperabilidad_needs_a_kept_s3_version():
    assert scores(run(b"id,valor,fecha\n1,2,3\n", version_id="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"))["recuperabilidad"] == 10.0
    report = run(b"id,valor,fecha\n1,2,3\n", version_id=None)
    assert scores(report)["recuperabilidad"] == 0.0
    assert report.criterion("recuperabilidad").inputs == {"version_id": None, "versioned": False}
    # "null": put while versioning was off, so the next harvest replaces it (trazabilidad agrees).
    report = run(b"id,valor,fecha\n1,2,3\n", version_id="null")
    assert scores(report)["recuperabilidad"] == 0.0 and scores(report)["trazabilidad"] == 8.0


@pytest.mark.parametrize("frequency, age_days, expected, err015", [
    ("Diario", 0.5, 10.0, False),  # masculine spelling of "Diaria"
    ("Diario", 2, 0.0, True),
    ("Semanal.", 3, 10.0, False),  # trailing punctuation
    ("Anual.", 400, 0.0, True),
    ("Mensualmente", 10, 10.0, False),
    ("Tiempo real", 0.5, 10.0, False),  # the daily allowance, the shortest there is
    ("En tiempo real", 2, 0.0, True),
    ("Única vez", 4000, 10.0, False),  # no schedule to keep, like "No aplica"
    ("Unica vez", 4000, 10.0, False),
    ("Cuando se requiera", 4000, 10.0, False),
    ("A demanda", 4000, 10.0, False),
    ("Solo una vez", 4000, 10.0, False),  # datos.gov.co's wording of "Única vez"
    ("Nunca", 4000, 10.0, False),
    ("Más de tres años", 4000, 10.0, False),  # no bound on the wait: it can never be shown late
    ("NA", 4000, 10.0, False),
])
def test_actualidad_accepts_spelling_variants_and_no_schedule_frequencies(frequency, age_days, expected, err015):
    report = run(b"id,valor,fecha\n1,2,2026-01-01\n",
                 update_frequency=frequency, source_updated_at=int(NOW.timestamp() - age_days * DAY))
    assert scores(report)["actualidad"] == expected
    assert ("ERR015" in report.error_codes) is err015


@pytest.mark.parametrize("frequency, reason", [
    ("Irregular", "unrecognised frequency: Irregular"),
    ("  Cada luna llena ", "unrecognised frequency: Cada luna llena"),
    ("", "no declared frequency"),
])
def test_actualidad_tells_an_unrecognised_frequency_from_a_missing_one(frequency, reason):
    report = run(b"id,valor,fecha\n1,2,2026-01-01\n", update_frequency=frequency)
    assert scores(report)["actualidad"] == 0.0 and "ERR015" not in report.error_codes
    assert report.criterion("actualidad").inputs["reason"] == reason
