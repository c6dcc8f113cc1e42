"""Plain-text tables for the command line: aligned columns, the last one free to run long."""

from __future__ import annotations

from collections.abc import Sequence


def render(header: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "") -> str:
    cells = [[str(c) for c in header], *[["-" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append(indent + "  ".join(padded).rstrip())
    return "\n".join(lines)
