"""How a platform plugs in: one factory per platform name (``local``, ``aws``).

The CLI's composition root picks the factory named by an environment's ``platform`` and
asks it for the adapters of one service in that environment. Factories are constructed
with the loaded project and the clock: ``Factory(project, clock)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pipeline.core.edge import ApiKeys
from pipeline.core.plan import Strategy
from pipeline.core.ports import Clock, ImageRegistry, LockManager, Platform, StateStore
from pipeline.core.state import DeploymentState

if TYPE_CHECKING:
    from pipeline.config import EnvironmentConfig, Project, ServiceConfig


class PlatformFactory(Protocol):
    def __init__(self, project: Project, clock: Clock) -> None: ...

    def stores(self, env: EnvironmentConfig) -> tuple[StateStore, LockManager]:
        """The state store and lock manager holding ``env``'s deployments."""

    def platform(self, env: EnvironmentConfig, service: ServiceConfig) -> Platform:
        """Compute, router, metrics and stage runner for ``service`` in ``env``."""

    def registry(self, env: EnvironmentConfig) -> ImageRegistry:
        """Resolves a service's tag, commit or digest to a release pinned by digest."""


@runtime_checkable
class ApiKeysFactory(Protocol):
    """A factory whose platform manages the API keys of services' ``api:`` edges."""

    def api_keys(self, env: EnvironmentConfig) -> ApiKeys:
        """Create, list and revoke the keys of ``env``'s services."""


@runtime_checkable
class StrategyRules(Protocol):
    """A factory whose platform shapes a service's strategy (the AWS factory: the ECS drain).

    A factory without platform rules for strategies does not implement it.
    """

    def strategy(self, env: EnvironmentConfig, service: ServiceConfig, strategy: Strategy) -> Strategy:
        """``strategy`` as the platform runs ``service`` in ``env`` (e.g. ``drain_seconds``);
        raises when ``env`` cannot run it (e.g. credentials that expire before it ends)."""


@runtime_checkable
class ResumeRules(Protocol):
    """A factory whose platform checks that this process can run what is left of a stored
    deployment before it resumes or continues it (the AWS factory: credentials that outlast
    the rest of the plan). A factory without such rules does not implement it."""

    def resumable(self, env: EnvironmentConfig, state: DeploymentState, command: str) -> None:
        """Raises (UsageError, nothing changed) when this process cannot run the rest of
        ``state``; ``command`` is what was asked (``deploy --resume``, ``continue``)."""
