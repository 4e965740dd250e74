"""The printed result: one row per scenario, then the notes that explain any row that failed.

Plain fixed-width text, so it reads the same in a terminal, a CI log and docs/stress.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RECOVERY_GOAL_S = 60.0


@dataclass
class Row:
    """One scenario's outcome. Conversation columns are None where a scenario has none (fuzz);
    `passed` is the verdict the exit code follows, `notes` say why and what was seen."""

    scenario: str
    total: int | None = None
    final: int | None = None
    exact: int | None = None
    lost: int = 0
    duplicated: int = 0
    recover_s: float | None = None
    p50_s: float | None = None
    p95_s: float | None = None
    per_s: float | None = None
    passed: bool = True
    notes: list[str] = field(default_factory=list)

    def fail(self, note: str) -> None:
        self.passed = False
        self.notes.append(note)


HEADERS = (
    "scenario",
    "convs",
    "final/exact",
    "lost",
    "dup",
    "recover s",
    "p50/p95 s",
    "deliv/s",
    "result",
)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cells(row: Row) -> tuple[str, ...]:
    conversations = row.total is not None
    recover = _seconds(row.recover_s)
    if row.recover_s is not None and row.recover_s > RECOVERY_GOAL_S:
        recover += " (!)"
    return (
        row.scenario,
        str(row.total) if conversations else "-",
        f"{row.final}/{row.exact}" if conversations else "-",
        str(row.lost),
        str(row.duplicated),
        recover,
        f"{_seconds(row.p50_s)}/{_seconds(row.p95_s)}" if row.p50_s is not None else "-",
        "-" if row.per_s is None else f"{row.per_s:.1f}",
        "PASS" if row.passed else "FAIL",
    )


def render(rows: list[Row]) -> str:
    cells = [HEADERS, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]

    def line(values: tuple[str, ...]) -> str:
        first = values[0].ljust(widths[0])
        rest = (value.rjust(width) for value, width in zip(values[1:], widths[1:], strict=True))
        return "  ".join((first, *rest))

    out = [line(HEADERS), "  ".join("-" * width for width in widths)]
    out += [line(values) for values in cells[1:]]
    notes = [(row.scenario, note) for row in rows for note in row.notes]
    if notes:
        out.append("")
        out += [f"{scenario}: {note}" for scenario, note in notes]
    slow = [row.scenario for row in rows if (row.recover_s or 0) > RECOVERY_GOAL_S]
    if slow:
        out.append(f"(!) recovery over the {RECOVERY_GOAL_S:.0f} s goal: {', '.join(slow)}")
    return "\n".join(out)
