"""Criteria benchmark (issue 4): the quality evaluator vs a pandas baseline on 1,000,000 rows.

The file is generated once into .bench/ from the real sample's 23 columns (rows drawn from the
sample with a fresh case id and age, one row in 1000 an exact duplicate of the previous one).
The same content is measured twice: unquoted (like the sample and the portal's full export) and
written the SODA way (`/resource/{id}.csv`: every field quoted, `\n` line ends, as
`local.portal.encode_csv`), which is what the pipeline actually stores. Each case runs in fresh
spawned processes on the same file: the evaluator (`handlers.quality.evaluate`, every criterion)
and pandas (`read_csv`, `isna().sum()`, `duplicated().sum()`: leila's approach). They must agree
on the empty-cell and duplicate figures; the report shows both.
"""

from __future__ import annotations

import csv
import multiprocessing
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).resolve().parent.parent / "local" / "snapshot" / "source" / "gt2j-8ykr-sample.csv"
CACHE = ROOT / ".bench"


def generate(rows: int) -> Path:
    path = CACHE / f"criteria-{rows}.csv"
    if path.exists():
        return path
    CACHE.mkdir(exist_ok=True)
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    header, sample = lines[0], [line.split(",") for line in lines[1:]]  # the sample has no quoting
    rnd = random.Random(4207)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        out.write(header + "\n")
        batch, previous = [], ""
        for i in range(rows):
            if i % 1000 == 999:
                line = previous  # an exact duplicate
            else:
                row = sample[rnd.randrange(len(sample))][:]
                row[1] = str(i + 1)
                row[7] = str(rnd.randrange(0, 100))
                line = ",".join(row)
            batch.append(line)
            previous = line
            if len(batch) == 50_000:
                out.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            out.write("\n".join(batch) + "\n")
    tmp.rename(path)
    return path


def generate_soda(rows: int) -> Path:
    """The same records as `generate(rows)`, every field quoted (`""` for an empty one)."""
    path = CACHE / f"criteria-{rows}-soda.csv"
    if path.exists():
        return path
    source = generate(rows)
    tmp = path.with_suffix(".tmp")
    with source.open(encoding="utf-8", newline="") as src, tmp.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(csv.reader(src))
    tmp.rename(path)
    return path


def _dataset(path: Path):
    from contract.messages import Column, HarvestMessage

    with path.open(encoding="utf-8", newline="") as stream:
        header = next(csv.reader(stream))
    types = {"fecha reporte web": "calendar_date", "ID de caso": "number", "Fecha de notificación": "calendar_date",
             "Código DIVIPOLA departamento": "number", "Código DIVIPOLA municipio": "number", "Edad": "number",
             "Unidad de medida de edad": "number", "Código ISO del país": "number",
             "Fecha de inicio de síntomas": "calendar_date", "Fecha de muerte": "calendar_date",
             "Fecha de diagnóstico": "calendar_date", "Fecha de recuperación": "calendar_date",
             "Pertenencia étnica": "number"}
    return HarvestMessage(
        ID="gt2j-8ykr", OWNER="Instituto Nacional de Salud", NAME="Casos positivos de COVID-19 en Colombia",
        EMAIL="", CATEGORY="Salud y Protección Social", bucket="bench", key="gt2j-8ykr/gt2j-8ykr.csv",
        version_id="v", size=path.stat().st_size, rows=0, harvested_at="", source_updated_at=None,
        columns=tuple(Column(name=h, field_name=h, data_type=types.get(h, "text")) for h in header))


def _case(kind: str, path: str, out) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.peakrss import peak_rss_mib

    if kind == "evaluator":
        from datetime import datetime, timezone

        from handlers.quality import evaluate

        dataset = _dataset(Path(path))
        started = time.perf_counter()
        with open(path, "rb") as stream:
            report = evaluate(stream, dataset, datetime.now(timezone.utc))
        elapsed = time.perf_counter() - started
        figures = (report.counts["rows"], report.counts["empty_cells"], report.counts["duplicate_rows"])
    else:
        import pandas as pd

        started = time.perf_counter()
        frame = pd.read_csv(path)
        empty = int(frame.isna().sum().sum())
        duplicates = int(frame.duplicated().sum())
        elapsed = time.perf_counter() - started
        figures = (len(frame), empty, duplicates)
    out.put((elapsed, peak_rss_mib(), figures))


def _measure(kind: str, path: Path):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    process = ctx.Process(target=_case, args=(kind, str(path), out))
    process.start()
    result = out.get(timeout=900)
    process.join()
    return result


CASES = (("unquoted", "as the sample: no field quoted", generate),
         ("SODA quoted", "as `/resource/{id}.csv`: every field quoted", generate_soda))


def run(quick: bool = False) -> str:
    rows = 20_000 if quick else 1_000_000
    repeats = 1 if quick else 3
    sections = []
    for name, how, make in CASES:
        path = make(rows)
        results = {}
        for kind in ("evaluator", "pandas"):
            runs = [_measure(kind, path) for _ in range(repeats)]
            results[kind] = (min(r[0] for r in runs), max(r[1] for r in runs), runs[0][2])
        sections.append(_table(f"{name} ({how}, {path.stat().st_size / 10**6:.0f} MB)", results))
    return "\n".join([
        f"## Criteria: evaluator vs pandas ({rows:,} rows x 23 columns)",
        "",
        f"Each case in a fresh process, best time of {repeats}, highest peak RSS (`VmHWM`). The evaluator "
        "computes every criterion (type checks on its documented sample); pandas only `read_csv`, "
        "`isna`, `duplicated`. The same records are measured unquoted and quoted the SODA way, the "
        "form the pipeline stores.",
        "",
        *sections,
    ])


def _table(title, results) -> str:
    lines = [
        f"### {title}",
        "",
        "| approach | time (s) | rows/s | peak RSS (MiB) | rows | empty cells | duplicate rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, label in (("evaluator", "evaluator (handlers.quality)"), ("pandas", "pandas baseline")):
        elapsed, rss, (n, empty, duplicates) = results[kind]
        lines.append(f"| {label} | {elapsed:.2f} | {n / elapsed:,.0f} | {rss:.0f} | {n:,} | {empty:,} | {duplicates:,} |")
    (t_eval, rss_eval, fig_eval), (t_pd, rss_pd, fig_pd) = results["evaluator"], results["pandas"]
    goals = [
        ("same rows, empty cells and duplicates as pandas", "equal" if fig_eval == fig_pd else "different",
         fig_eval == fig_pd),
        ("no slower than pandas", f"{t_pd / t_eval:.2f}x pandas' speed", t_eval <= t_pd),
        ("peak RSS <= 1/4 of pandas'", f"{rss_eval / rss_pd:.2f} of pandas'", rss_eval <= rss_pd / 4),
    ]
    lines += ["", "| goal | measured | result |", "|---|---|---|"]
    lines += [f"| {goal} | {measured} | {'PASS' if ok else 'FAIL'} |" for goal, measured, ok in goals]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
