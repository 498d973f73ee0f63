"""Rebuilds this snapshot: `python local/snapshot/generate.py [path/to/gt2j-8ykr-sample.csv]`.

gt2j-8ykr is the REAL sample (values unchanged, see README.md); the three other datasets are
GENERATED with a fixed seed and labelled so in their metadata.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from local.portal import GENERATED_NOTE, Dataset, encode_csv, inventory_row, view_metadata  # noqa: E402

SAMPLE = HERE / "source" / "gt2j-8ykr-sample.csv"  # the real sample, copied with its provenance
# The sample's display names (export header) and the dataset's API field names.
GT2J_COLUMNS = [
    ("fecha reporte web", "fecha_reporte_web", "text"), ("ID de caso", "id_de_caso", "number"),
    ("Fecha de notificación", "fecha_de_notificaci_n", "text"),
    ("Código DIVIPOLA departamento", "departamento", "number"), ("Nombre departamento", "departamento_nom", "text"),
    ("Código DIVIPOLA municipio", "ciudad_municipio", "number"), ("Nombre municipio", "ciudad_municipio_nom", "text"),
    ("Edad", "edad", "number"), ("Unidad de medida de edad", "unidad_medida", "number"), ("Sexo", "sexo", "text"),
    ("Tipo de contagio", "fuente_tipo_contagio", "text"), ("Ubicación del caso", "ubicacion", "text"),
    ("Estado", "estado", "text"), ("Código ISO del país", "pais_viajo_1_cod", "number"),
    ("Nombre del país", "pais_viajo_1_nom", "text"), ("Recuperado", "recuperado", "text"),
    ("Fecha de inicio de síntomas", "fecha_inicio_sintomas", "text"), ("Fecha de muerte", "fecha_muerte", "text"),
    ("Fecha de diagnóstico", "fecha_diagnostico", "text"), ("Fecha de recuperación", "fecha_recuperado", "text"),
    ("Tipo de recuperación", "tipo_recuperacion", "text"), ("Pertenencia étnica", "per_etn_", "number"),
    ("Nombre del grupo étnico", "nom_grupo_", "text"),
]
TOWNS = [("05", "ANTIOQUIA", "05001", "MEDELLÍN"), ("11", "BOGOTÁ D.C.", "11001", "BOGOTÁ, D.C."),
         ("52", "NARIÑO", "52001", "PASTO"), ("76", "VALLE DEL CAUCA", "76001", "CALI"),
         ("50", "META", "50251", "EL CASTILLO"), ("18", "CAQUETÁ", "18001", "FLORENCIA")]


def secop(rng: random.Random, count: int):
    header = [("Nombre Entidad", "nombre_entidad", "text", "Entidad contratante."),
              ("Departamento", "departamento", "text", "Departamento de la entidad."),
              ("Ciudad", "ciudad", "text", "Ciudad de la entidad."),
              ("Referencia del Contrato", "referencia_del_contrato", "text", "Referencia única."),
              ("Objeto del Contrato", "descripcion_del_proceso", "text", "Objeto, texto libre."),
              ("Valor del Contrato", "valor_del_contrato", "number", "Valor en pesos."),
              ("Fecha de Firma", "fecha_de_firma", "calendar_date", "Fecha de firma."),
              ("Correo Proveedor", "correo_proveedor", "text", "")]
    rows = []
    for i in range(count):
        _, dep, _, town = rng.choice(TOWNS)
        objeto = rng.choice(["Prestación de servicios profesionales, apoyo a la gestión",
                             'Suministro de "papelería" y útiles de oficina',
                             "Obra: mejoramiento de vía\nTramo 2, vereda La Niña", ""])
        rows.append([f"ALCALDÍA DE {town}", dep, town, f"CO1.PCCNTR.{100000 + i}", objeto,
                     str(rng.randrange(1, 500) * 100000), f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:00.000",
                     "" if i % 4 else f"proveedor{i}@example.com"])
    return header, rows


def colombia_mayor(rng: random.Random, count: int):
    header = [("Municipio", "municipio", "text", "Municipio de residencia."),
              ("Documento", "documento", "text", "Documento del beneficiario (ficticio)."),
              ("Nombre", "nombre", "text", ""), ("Edad", "edad", "number", "Edad en años."),
              ("Valor Subsidio", "valor_subsidio", "number", "Valor mensual en pesos.")]
    names = ["María Peña", "José Núñez", "Ana Muñoz, de Gómez", "Luis Ibáñez", "Rosa Quiñones"]
    rows = [["EL CASTILLO", f"{rng.randrange(10**7, 10**8)}", rng.choice(names), str(rng.randrange(60, 100)),
             "80000" if i % 9 else ""] for i in range(count)]
    return header, rows


def pcr(rng: random.Random, count: int):
    header = [("Fecha", "fecha", "calendar_date", "Fecha de procesamiento."),
              ("Código DIVIPOLA", "codigo_divipola", "text", "Código del departamento."),
              ("Departamento", "departamento", "text", "Departamento."),
              ("Número de pruebas", "numero_de_pruebas", "number", "Pruebas PCR procesadas.")]
    rows = []
    for i in range(count):
        code, dep, _, _ = TOWNS[i % len(TOWNS)]
        rows.append([f"2020-{3 + (i // 186) % 10:02d}-{1 + (i // 6) % 28:02d}T00:00:00.000", code, dep,
                     str(rng.randrange(0, 5000))])
    return header, rows


def main() -> None:
    sample = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE
    (HERE / "views").mkdir(exist_ok=True)
    (HERE / "data").mkdir(exist_ok=True)
    datasets: list[tuple[Dataset, dict]] = []

    records = list(csv.reader(io.StringIO(sample.read_text(encoding="utf-8"), newline="")))
    assert records[0] == [c[0] for c in GT2J_COLUMNS], "unexpected sample header"
    meta = view_metadata(
        "gt2j-8ykr", "Casos positivos de COVID-19 en Colombia.", rows_updated_at=1635724800, frequency="Diaria",
        owner="Instituto Nacional de Salud", attribution="Instituto Nacional de Salud", category="Salud y Protección Social",
        description="Casos positivos de COVID-19 en Colombia. SNAPSHOT NOTE: the first 99 real rows only "
                    "(see local/snapshot/README.md).",
        columns=[(name, field, kind, "") for name, field, kind in GT2J_COLUMNS])
    data, offsets = encode_csv([c[1] for c in GT2J_COLUMNS], records[1:])
    gt2j = Dataset("gt2j-8ykr", meta, data, offsets)
    datasets.append((gt2j, inventory_row(gt2j, owner="Instituto Nacional de Salud",
                                         contact_email="contacto@ins.gov.co")))

    generated = [
        ("jbjy-vk9h", "SECOP II - Contratos Electrónicos",
         "AGENCIA NACIONAL DE CONTRATACION PUBLICA -COLOMBIA COMPRA EFICIENTE-|08033", secop, 300, "Diaria", {}),
        ("9ssf-i6c5", "Base de datos beneficiarios Colombia mayor.", "ALCALDIA MUNICIPAL DE EL CASTILLO",
         colombia_mayor, 120, "", {"contact_email": None, "informacindedatos_frecuenciadeactualizacin": None,
                                   "license": None}),
        ("8835-5baf", "Pruebas PCR procesadas de COVID-19 en Colombia (Departamental)", "Instituto Nacional de Salud",
         pcr, 1200, "Semanal", {}),
    ]
    for number, (dataset_id, name, owner, build, count, frequency, overrides) in enumerate(generated):
        columns, rows = build(random.Random(number + 1), count)
        meta = view_metadata(dataset_id, name, columns=columns, frequency=frequency, owner=owner, attribution=owner,
                             description=f"{GENERATED_NOTE} Stands in for the real dataset of this id.")
        data, offsets = encode_csv([c[1] for c in columns], rows)
        dataset = Dataset(dataset_id, meta, data, offsets)
        datasets.append((dataset, inventory_row(dataset, owner=owner, **overrides)))

    for dataset, _ in datasets:
        (HERE / "views" / f"{dataset.id}.json").write_text(
            json.dumps(dataset.metadata, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        (HERE / "data" / f"{dataset.id}.csv").write_bytes(dataset.data)
    base = datasets[2][1]
    excluded = [
        {**base, "uid": "8ffd-q6x9:0", "name": "Borrador (draft of a dataset)"},
        {**base, "uid": "ch4r-t001", "name": "Gráfico de contratos", "type": "chart"},
        {**base, "uid": "priv-0001", "name": "Conjunto privado", "audience": "private"},
        {**base, "uid": "unpb-0001", "name": "Conjunto sin publicar", "publication_stage": "unpublished"},
    ]
    manifest = {"inventory_id": "uzcf-b9dh", "rows": [row for _, row in datasets] + excluded}
    (HERE / "inventory.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
