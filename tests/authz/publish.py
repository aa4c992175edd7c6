"""The matrix as Markdown, published in docs/authorisation.md between two markers.

    .venv/bin/python -m tests.authz.publish    # rewrite the table in docs/authorisation.md

``test_publish.py`` fails when the published table differs from ``matrix.py``.
"""

from __future__ import annotations

from pathlib import Path

from tests.authz.callers import CALLERS
from tests.authz.matrix import PARTS, ROWS
from tests.authz.table import OK, Row

DOC = Path(__file__).resolve().parents[2] / "docs" / "authorisation.md"
START, END = "<!-- authz-matrix:start -->", "<!-- authz-matrix:end -->"
HEADERS = {
    "anonymous": "anon",
    "citizen:own": "cit own",
    "citizen:other": "cit other",
    "agent:own": "agent own",
    "agent:other": "agent other",
    "officer:same-dept": "officer A",
    "officer:other-dept": "officer B",
    "dept_admin:same-dept": "admin A",
    "dept_admin:other-dept": "admin B",
    "platform_admin": "platform",
    "auditor": "auditor",
    "evaluator": "evaluator",
    "service:same-dept": "system A",
    "service:other-dept": "system B",
}
CELLS = {OK: "✓", 401: "401", 403: "403", 404: "404"}


def _cell(row: Row, caller: str) -> str:
    expected = row.expected(caller)
    return CELLS.get(expected, str(expected))


def _endpoint(row: Row) -> str:
    target = f" ({row.target.replace('_', ' ')})" if row.target else ""
    return f"`{row.method} {row.path}`{target}"


def render() -> str:
    """Every part's rows as a Markdown table, with the notes below each."""
    assert list(HEADERS) == list(CALLERS)
    lines: list[str] = []
    for part in PARTS:
        rows = [row for row in ROWS if row.part == part]
        lines += [f"#### {part} ({len(rows)} rows)", ""]
        lines.append("| endpoint | " + " | ".join(HEADERS.values()) + " |")
        lines.append("|---|" + "---|" * len(CALLERS))
        notes: list[str] = []
        for row in rows:
            cells = " | ".join(_cell(row, caller) for caller in CALLERS)
            mark = ""
            if row.note:
                notes.append(row.note)
                mark = f" [{len(notes)}]"
            lines.append(f"| {_endpoint(row)}{mark} | {cells} |")
        lines.append("")
        lines += [f"{number}. {note}" for number, note in enumerate(notes, start=1)]
        if notes:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def published() -> str:
    """The table as docs/authorisation.md holds it now."""
    text = DOC.read_text(encoding="utf-8")
    return text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def publish() -> None:
    """Write the table into docs/authorisation.md."""
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{render()}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    publish()
