"""Data as literal text in GitHub-flavoured markdown (job summaries, pull request bodies).

``md(text)`` escapes what would change meaning (a table column, emphasis, a link, an
image, HTML, a heading or list at the start); ``code(text)`` makes a code span that the
text cannot close early; ``link(name, url)`` a link only to an http(s) URL, else the name
and the URL as text. Nothing a name, a message or a version holds can add structure to
the page around it.
"""

from __future__ import annotations

import re

__all__ = ["code", "link", "md"]

# GitHub-flavoured markdown's inline punctuation (code, emphasis, strikethrough, links and
# images, table cells); a backslash makes each literal (CommonMark "backslash escapes",
# https://spec.commonmark.org/0.31.2/#backslash-escapes; GFM: "\|" inside a table cell).
_INLINE = frozenset("\\`*_[]|~!")
# ... and what opens a block when it starts the text (heading, list, setext underline).
_LEADING = frozenset("#-+=")  # ">" is an entity below, which opens no quote
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_URL = re.compile(r"https?://[^\s<>()`\\]+")  # nothing that could end the link early


def md(text: str) -> str:
    """``text`` as literal markdown inline text, safe in a table cell or a list item:
    punctuation that means something is backslash-escaped, ``&<>`` become entities (no
    HTML tag or entity can form) and line breaks become spaces (a cell is one line)."""
    flat = " ".join(text.splitlines()).strip()
    lead = "\\" if flat[:1] in _LEADING else ""
    return lead + "".join(_HTML.get(c) or (f"\\{c}" if c in _INLINE else c) for c in flat)


def code(text: str) -> str:
    """``text`` as a markdown code span: fenced by one more backtick than its longest run
    of backticks, so nothing in it can close the span early. Outside tables only: GFM
    splits table cells on ``|`` even inside code spans."""
    flat = " ".join(text.splitlines())
    fence = "`" * (max((len(run) for run in re.findall("`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def link(name: str, url: str) -> str:
    """``[name](url)`` for an http(s) URL without spaces, brackets, parentheses or
    backticks; otherwise the name and the URL as literal text (never a link to
    ``javascript:`` or the like)."""
    if _URL.fullmatch(url):
        return f"[{md(name)}]({url})"
    return f"{md(name)}: {md(url)}"
