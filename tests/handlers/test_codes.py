"""handlers/codes.py: which columns hold DIVIPOLA codes, which values conform, which pairs agree."""

from __future__ import annotations

import pytest

from handlers.codes import DEPARTMENT, DEPARTMENTS, MUNICIPALITY, code_kind, conforms, consistent


@pytest.mark.parametrize(("name", "kind"), [
    ("Código DIVIPOLA departamento", DEPARTMENT),
    ("c_digo_divipola_departamento", DEPARTMENT),  # SODA's field name for the accented display name
    ("cod_dpto", DEPARTMENT),
    ("Código DIVIPOLA municipio", MUNICIPALITY),
    ("codigo_municipio", MUNICIPALITY),
    ("Nombre municipio", None),  # a name, not a code
    ("departamento", None),  # gt2j's field name: only its display name says it is a code
    ("cod_depto_mpio", None),  # both kinds: ambiguous
    ("codigo_entidad", None),
])
def test_a_column_is_a_code_column_when_its_name_says_code_and_one_kind(name, kind):
    assert code_kind(name) == kind


def test_the_department_list_is_dane_s_33():
    assert len(DEPARTMENTS) == 33 and {5, 11, 76, 88, 99} <= DEPARTMENTS and 12 not in DEPARTMENTS


@pytest.mark.parametrize(("kind", "value", "ok"), [
    (DEPARTMENT, "11", True), (DEPARTMENT, "05", True), (DEPARTMENT, "5", True), (DEPARTMENT, " 76 ", True),
    (DEPARTMENT, "12", False), (DEPARTMENT, "8001", False),  # Barranquilla's municipality code, as gt2j has it
    (DEPARTMENT, "5.0", False), (DEPARTMENT, "ANTIOQUIA", False),
    (MUNICIPALITY, "11001", True), (MUNICIPALITY, "05001", True), (MUNICIPALITY, "5001", True),
    (MUNICIPALITY, "76111", True), (MUNICIPALITY, "12001", False), (MUNICIPALITY, "76000", False),
    (MUNICIPALITY, "11", False), (MUNICIPALITY, "", False),
])
def test_values_conform_to_the_department_list_and_the_municipality_shape(kind, value, ok):
    assert conforms(kind, value) is ok


def test_a_municipality_must_lie_in_its_row_s_department():
    assert consistent("76", "76111") is True
    assert consistent("5", "05001") is True
    assert consistent("11", "76111") is False
    assert consistent("13001", "13001") is None  # the department does not conform: conformidad's count
