"""Tables on the console: a rich table on a terminal, plain aligned text otherwise (what log files, pipes and the
tests read)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def on_terminal() -> bool:
    return sys.stdout.isatty()


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """The header and the rows as lines, columns two spaces apart, column i left- (``align[i] == "l"``) or
    right-justified (``"r"``)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(cells, widths, align, strict=True)).rstrip()

    return [line(header), *map(line, rows)]


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str, title: str | None = None) -> None:
    """``rows`` as a rich table on a terminal, else as :func:`aligned` lines (``title`` above either)."""
    if not on_terminal():
        print("\n".join(([title] if title else []) + aligned(header, rows, align)))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, title=title, title_justify="left")
    for h, a in zip(header, align, strict=True):
        table.add_column(h, justify="left" if a == "l" else "right", overflow="fold")  # no id cut short
    for r in rows:
        table.add_row(*map(Text, r))  # as text: "[RUNNING]" is not rich markup
    Console().print(table)
