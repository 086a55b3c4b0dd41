"""``releases/<service>.json`` in the Ops repository: the release a promotion pull request
proposes for production, and how the pull request describes the change.

The file is the contract between the Dev pipeline (which writes it through ``pipeline
handoff``) and the Ops workflow (which reads it back from the merged, approved pull
request with ``pipeline approval github-pr``). Keys::

    {"service", "digest", "version", "commit", "image", "source_repo",
     "source_environment", "deployment", "evidence": {name: url}, "handed_off_at"}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import PromotionRefused
from pipeline.core.model import Release
from pipeline.markdown import code, link, md

RELEASES_DIR = "releases"
BRANCH_PREFIX = "promote/"
_PATH = re.compile(rf"^{RELEASES_DIR}/([a-z][a-z0-9-]{{0,29}})\.json$")
_KEYS = ("service", "digest", "version", "commit", "image", "source_repo", "source_environment", "deployment")


def path_for(service: str) -> str:
    return f"{RELEASES_DIR}/{service}.json"


def branch_for(service: str) -> str:
    return f"{BRANCH_PREFIX}{service}"


def service_of(path: str) -> str | None:
    """The service whose release file ``path`` is, or None for any other path."""
    match = _PATH.fullmatch(path)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class ReleaseFile:
    service: str
    digest: str
    version: str
    commit: str
    image: str
    source_repo: str
    source_environment: str
    deployment: str
    evidence: tuple[tuple[str, str], ...] = ()
    handed_off_at: str = ""

    @property
    def path(self) -> str:
        return path_for(self.service)

    @property
    def release(self) -> Release:
        return Release(self.service, self.version, self.digest, self.commit, self.image)

    def to_json(self) -> str:
        data: dict[str, Any] = {key: getattr(self, key) for key in _KEYS}
        data["evidence"] = dict(self.evidence)
        data["handed_off_at"] = self.handed_off_at
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def parse(cls, text: str, where: str) -> ReleaseFile:
        """Read a release file; PromotionRefused saying what is wrong with it otherwise."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _bad(where, f"not JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise _bad(where, "not a JSON object")
        missing = [key for key in ("service", "digest", "version") if not isinstance(data.get(key), str)]
        if missing:
            raise _bad(where, f"missing {', '.join(missing)}")
        evidence = data.get("evidence") or {}
        if not isinstance(evidence, dict):
            raise _bad(where, "evidence is not a mapping of name to URL")
        file = cls(
            **{key: str(data.get(key) or "") for key in _KEYS},
            evidence=tuple((str(k), str(v)) for k, v in evidence.items()),
            handed_off_at=str(data.get("handed_off_at") or ""),
        )
        try:
            file.release  # noqa: B018 - validates the digest
        except ValueError as exc:
            raise _bad(where, str(exc)) from exc
        return file


def _bad(where: str, why: str) -> PromotionRefused:
    return PromotionRefused(
        f"{where} is not a release file: {why}",
        hint="release files are written by `pipeline handoff`; fix or revert the file",
    )


def title(file: ReleaseFile) -> str:
    return f"Promote {file.service} {file.version} ({file.digest[7:19]})"


def body(current: ReleaseFile | None, new: ReleaseFile, *, base: str, server_url: str) -> str:
    """The pull request description: what changes in production, and the evidence."""
    now = current
    # Every value comes from a release file (a Dev repository's handoff): markdown-escaped,
    # so none can add structure to the page the Ops reviewers approve on (pipeline.markdown).
    lines = [
        f"Promotes **{md(new.service)}** to production: {code(new.version)} ({code(new.digest)}), the "
        f"release that passed **{md(new.source_environment)}**"
        + (f" (deployment {code(new.deployment)})." if new.deployment else "."),
        "",
        f"| | in production now ({_cell(RELEASES_DIR + '/')} on {_cell(base)}) | proposed |",
        "|---|---|---|",
        f"| version | {_cell(now.version if now else '')} | {_cell(new.version)} |",
        f"| digest | {_cell(now.digest if now else '')} | {_cell(new.digest)} |",
        f"| commit | {_cell(now.commit[:12] if now else '')} | {_cell(new.commit[:12])} |",
        f"| source | {_cell(now.source_repo if now else '')} | {_cell(new.source_repo)} |",
        "",
    ]
    compare = compare_url(current, new, server_url)
    if compare and current is not None:
        lines += [f"Code changes: {link(f'{current.commit[:7]}...{new.commit[:7]}', compare)}", ""]
    elif current is None:
        lines += ["First promotion of this service through this repository.", ""]
    if new.evidence:
        lines += ["Evidence:", *[f"- {link(name, url)}" for name, url in new.evidence], ""]
    lines += [
        "Approving: an approving review of **this head commit** by a member of the approving "
        "team, then merge. A push after the review voids it; the approval binds to this digest only.",
    ]
    return "\n".join(lines) + "\n"


def compare_url(current: ReleaseFile | None, new: ReleaseFile, server_url: str) -> str:
    """``<server>/<repo>/compare/<old>...<new>`` when both commits of one repository are known."""
    if current is None or not current.commit or not new.commit or not new.source_repo:
        return ""
    if current.commit == new.commit or current.source_repo != new.source_repo:
        return ""
    return f"{server_url.rstrip('/')}/{new.source_repo}/compare/{current.commit}...{new.commit}"


def _cell(value: str) -> str:
    """A table cell: a code span (GFM splits cells on ``|`` even inside one: escaped)."""
    return code(value).replace("|", "\\|") if value else "—"
