"""DANE's DIVIPOLA codes: which columns hold them and which values conform (conformidad), and
whether a municipality lies in its row's department (consistencia). Pure, no I/O.

Only the department list (33 codes, stable since 1991) is built in; a municipality code is checked
for its shape (department code followed by three digits, not 000) and its department, not
against the full list of ~1,100 municipalities, which would have to be fetched from DANE.
Codes written as numbers lose their leading zero (`5` for Antioquia's `05`, `5001` for Medellín's
`05001`), so both spellings conform.
"""

from __future__ import annotations

import re
import unicodedata

DEPARTMENT, MUNICIPALITY = "department", "municipality"

DEPARTMENTS = frozenset({
    5, 8, 11, 13, 15, 17, 18, 19, 20, 23, 25, 27, 41, 44, 47, 50, 52, 54, 63, 66, 68, 70, 73, 76,
    81, 85, 86, 88, 91, 94, 95, 97, 99,
})
_CODE_WORDS = {"codigo", "cod", "code", "divipola"}
_KIND_WORDS = {
    DEPARTMENT: {"departamento", "depto", "dpto"},
    MUNICIPALITY: {"municipio", "mpio", "mun"},
}
_DIGITS = re.compile(r"\d{1,5}")


def _words(name: str) -> set[str]:
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return set(re.split(r"[^a-z0-9]+", plain))


def code_kind(column_name: str) -> str | None:
    """DEPARTMENT or MUNICIPALITY when the column's name says it holds that DIVIPOLA code
    (`Código DIVIPOLA municipio`, `cod_dpto`, SODA's `c_digo_divipola_departamento`), else None."""
    words = _words(column_name)
    if not words & _CODE_WORDS:
        return None
    kinds = [kind for kind, names in _KIND_WORDS.items() if words & names]
    return kinds[0] if len(kinds) == 1 else None


def code_value(value: str) -> int | None:
    """The code as a number when `value` is written as one (digits only), else None."""
    value = value.strip()
    return int(value) if _DIGITS.fullmatch(value) else None


def conforms(kind: str, value: str) -> bool:
    code = code_value(value)
    if code is None:
        return False
    if kind == DEPARTMENT:
        return code in DEPARTMENTS
    return code // 1000 in DEPARTMENTS and code % 1000 != 0


def consistent(department: str, municipality: str) -> bool | None:
    """Whether the municipality lies in the department; None when either code does not conform
    (conformidad counts those)."""
    if not (conforms(DEPARTMENT, department) and conforms(MUNICIPALITY, municipality)):
        return None
    return code_value(municipality) // 1000 == code_value(department)  # type: ignore[operator]
