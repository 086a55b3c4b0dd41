"""What the consoles print into a pipe or a CI log is never wrapped."""

from __future__ import annotations

import io

from pipeline.console.render import make_console

LONG = "report: /tmp/" + "/".join(["a-rather-long-folder-name"] * 8) + "/orders.html"


def test_stderr_messages_stay_on_one_line_in_a_pipe() -> None:
    pipe = io.StringIO()
    console = make_console(stderr=True, file=pipe, width=60)
    console.print(LONG)
    assert pipe.getvalue() == LONG + "\n"


def test_a_terminal_still_wraps_stderr_messages_to_its_width() -> None:
    tty = io.StringIO()
    console = make_console(stderr=True, file=tty, width=60, force_terminal=True, environ={"NO_COLOR": "1"})
    console.print(LONG)
    lines = tty.getvalue().splitlines()
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines)
