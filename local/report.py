"""The demo's results: one outcome per dataset, a terminal table and a self-contained HTML report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Sequence

from jinja2 import Environment, FileSystemLoader
from rich.markup import escape
from rich.table import Table as RichTable

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class DatasetOutcome:
    """Everything the pipeline produced for one dataset, and what went wrong."""

    id: str
    name: str = ""
    harvest: str = ""  # harvested, skipped, re-announced or failed
    rows: int | None = None
    size: int | None = None
    sha256: str = ""
    score: float | None = None
    criteria: dict[str, float] = field(default_factory=dict)
    error_codes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def terminal_table(outcomes: list[DatasetOutcome]) -> RichTable:
    table = RichTable(title="ARTI4207 pipeline: one row per selected dataset", title_justify="left")
    # Figures never wrap; the name is cut short first, then the failures wrap.
    figures: tuple[tuple[str, Literal["left", "right"], int], ...] = (
        ("dataset", "left", 9), ("rows", "right", 5), ("size", "right", 8), ("sha256", "left", 12),
        ("quality", "right", 7))
    for column, justify, width in figures:
        table.add_column(column, justify=justify, no_wrap=True, min_width=width)
    table.add_column("name", max_width=40)
    table.add_column("failures", overflow="fold")
    for outcome in outcomes:
        table.add_row(
            escape(outcome.id),
            "-" if outcome.rows is None else f"{outcome.rows:,}",
            human_size(outcome.size),
            outcome.sha256[:12] or "-",
            "-" if outcome.score is None else f"{outcome.score:.1f}/10",
            escape(outcome.name),  # portal text: "[en pesos]" is not rich markup
            escape("; ".join(outcome.failures)) or "[green]none[/green]",
        )
    return table


def write_html(outcomes: list[DatasetOutcome], path: Path, *, portal: str, endpoint: str,
               rejected: Sequence[dict] = ()) -> Path:
    # autoescape=True, not select_autoescape(): that keys on the template's suffix, and `.j2` is
    # not one it escapes; names and reasons come from the portal and from dead letters.
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    environment.filters["human_size"] = human_size
    html = environment.get_template("report.html.j2").render(
        outcomes=outcomes,
        portal=portal,
        endpoint=endpoint,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        failed=sum(not o.ok for o in outcomes),
        rejected=list(rejected),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
