"""Who is acting, as far as the toolkit can prove it, and whether that makes them a member.

Two kinds of name exist. A *label* (``$GITHUB_ACTOR``, ``$PIPELINE_ACTOR``, ``$USER``:
``pipeline.owners.actor``) names the actor in every record; the caller sets it freely, so
it never satisfies an approval or allows a break-glass override. An ``Identity`` comes
from a source the caller cannot set:

- ``aws-sts``: the ARN that STS ``GetCallerIdentity`` returns for the caller's credentials
  (verified: AWS signed the answer to a request signed with those credentials);
- ``github``: a reviewer whose review GitHub recorded (``pipeline approval github-pr|run``);
- ``os``: the operating-system account of this process (``getpwuid(getuid())``, never
  ``$USER``). Unverified: anyone who controls the machine (or the state file) controls it,
  so it counts only where the environment allows unverified identities.

Organisation members (``organisations.NAME.members``) are matched like this: an entry
``aws:PATTERN`` matches an ``aws-sts`` ARN (shell-style ``*`` wildcards, e.g.
``aws:arn:aws:sts::123456789012:assumed-role/ops-admin/*``); any other entry is a login,
matched exactly against an ``os`` or ``github`` identity. No members means anyone.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Source = Literal["os", "aws-sts", "github"]
AWS_PREFIX = "aws:"


@dataclass(frozen=True, slots=True)
class Identity:
    """A name and where it was proven; ``verified`` is False only for the OS account."""

    name: str
    source: Source

    @property
    def verified(self) -> bool:
        return self.source != "os"

    def describe(self) -> str:
        """e.g. ``carol (OS account, unverified)`` or ``arn:aws:sts::... (AWS STS)``."""
        what = {"os": "OS account, unverified", "aws-sts": "AWS STS", "github": "GitHub review"}
        return f"{self.name} ({what[self.source]})"

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "verified": self.verified}

    @classmethod
    def from_dict(cls, data: object) -> Identity | None:
        """The identity stored in a record's data, or None (an old record, or a label only)."""
        if not isinstance(data, Mapping):
            return None
        name, source = data.get("name"), data.get("source")
        if not isinstance(name, str) or source not in ("os", "aws-sts", "github"):
            return None
        return cls(name, source)


def os_account() -> Identity:
    """This process's OS account from the password database (not ``$USER``, which anyone sets)."""
    return Identity(pwd.getpwuid(os.getuid()).pw_name, "os")


def is_member(identity: Identity, members: Iterable[str] | None, *, unverified: bool) -> bool:
    """Whether ``identity`` counts as one of ``members`` (None or empty: anyone). An
    unverified identity counts only with ``unverified`` (the environment allows it)."""
    if not identity.verified and not unverified:
        return False
    entries = tuple(members or ())
    if not entries:
        return True
    if identity.source == "aws-sts":
        patterns = (m[len(AWS_PREFIX):] for m in entries if m.startswith(AWS_PREFIX))
        return any(fnmatch.fnmatchcase(identity.name, p) for p in patterns)
    return identity.name in (m for m in entries if not m.startswith(AWS_PREFIX))
