"""Names, ids and digests are validated whole: ``re.match`` with ``$`` also accepts a
final newline (``"prod\\n"``), so every validator uses ``re.fullmatch``. Each case here is
a value that passed before and is refused now, next to the same value without the newline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.core.errors import UsageError
from pipeline.core.model import Release
from pipeline.github.models import RepoName
from pipeline.github.release_file import service_of
from pipeline.github.statuses import report
from pipeline.local.lambda_.model import FUNCTION_NAME, check_name
from pipeline.oci import Descriptor
from tests.unit.support.project import REPO_ROOT

DIGEST = "sha256:" + "ab" * 32
SHA = "0123456789abcdef0123456789abcdef01234567"


def release(digest: str) -> Release:
    return Release("orders", "v1", digest, SHA)


def descriptor(digest: str) -> Descriptor:
    return Descriptor.parse({"digest": digest, "size": 1}, "index.json")


def repo(text: str) -> RepoName:
    return RepoName.parse(text)


def function(name: str) -> str:
    return check_name("function", name, FUNCTION_NAME, "letters, digits, '-' and '_'")


def status(commit: str) -> Any:
    return report(Any, RepoName("acme", "shop"), commit, "prod", "in_progress")  # type: ignore[arg-type]


CASES: list[tuple[str, Callable[[str], Any], str, type[Exception]]] = [
    ("release digest", release, DIGEST, ValueError),
    ("OCI descriptor digest", descriptor, DIGEST, UsageError),
    ("GitHub repository", repo, "acme-ops/deployments", UsageError),
    ("Lambda function name", function, "orders-dev", UsageError),
]


@pytest.mark.parametrize(("what", "check", "good", "error"), CASES, ids=[c[0] for c in CASES])
def test_a_trailing_newline_is_refused_where_the_value_alone_passes(
    what: str, check: Callable[[str], Any], good: str, error: type[Exception]
) -> None:
    check(good)
    with pytest.raises(error):
        check(good + "\n")


def test_a_commit_with_a_trailing_newline_is_not_a_commit() -> None:
    with pytest.raises(UsageError, match="is not a commit sha"):
        status(SHA + "\n")


def test_a_release_file_path_with_a_trailing_newline_names_no_service() -> None:
    assert service_of("releases/orders.json") == "orders"
    assert service_of("releases/orders.json\n") is None


def test_no_pattern_anchored_with_a_dollar_is_used_with_match() -> None:
    """A guard for new code: a pattern ending in ``$`` (compiled into a name, or passed to
    ``re.match``) is never used with ``.match(``, which would accept a final newline."""
    anchored = re.compile(r"""(\w+)\s*=\s*re\.compile\(\s*r?f?["'](.*?)\$["']""")
    offenders = []
    for path in sorted((REPO_ROOT / "pipeline").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        names = {found.group(1) for found in anchored.finditer(text)}
        for number, line in enumerate(text.splitlines(), 1):
            direct = re.search(r"""re\.match\(\s*r?f?["'][^"']*\$["']""", line)
            if direct or any(f"{name}.match(" in line for name in names):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}")
    assert offenders == []
