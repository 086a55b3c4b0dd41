"""The composition root: the one place where config, platforms and the engine meet.

Commands ask ``App`` for what they need; ``App`` loads the project once, picks the
platform factory named by each environment and builds ``operations.Context`` objects.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from pipeline.aws.factory import AwsFactory
from pipeline.clock import SystemClock
from pipeline.config import EnvironmentConfig, Project, load_project, strategy_for
from pipeline.core.edge import ApiKeys
from pipeline.core.errors import UsageError
from pipeline.core.model import ImageRef, Release, ServiceRef
from pipeline.core.plan import Strategy
from pipeline.core.ports import Clock, EventSink, ImageRegistry, RunObserver, StateStore
from pipeline.engine import EngineSettings
from pipeline.identity import Identity, os_account
from pipeline.local.factory import LocalFactory
from pipeline.observe.wiring import observer_for, tracer_for
from pipeline.operations import Context
from pipeline.owners import actor, owner_id
from pipeline.project_root import PROJECT_FILE, SERVICES_DIR, find_root
from pipeline.requirements import Override, Requirements
from pipeline.wiring import ApiKeysFactory, PlatformFactory, ResumeRules, StrategyRules

FACTORIES: dict[str, type[PlatformFactory]] = {"local": LocalFactory, "aws": AwsFactory}
"""The platform factory for each ``platform:`` value of an environment."""


@dataclass
class App:
    root_hint: Path
    clock: Clock = field(default_factory=lambda: SystemClock())  # noqa: PLW0108 - late binding lets tests swap the clock
    _factories: dict[str, PlatformFactory] = field(default_factory=dict)
    project_file: Path | None = None  # --project: environments from this file, services from the root

    @cached_property
    def root(self) -> Path:
        marker = PROJECT_FILE if self.project_file is None else SERVICES_DIR
        return find_root(self.root_hint, marker)

    @cached_property
    def project(self) -> Project:
        return load_project(self.root, self.project_file)

    @property
    def actor(self) -> str:
        return actor()

    @property
    def owner(self) -> str:
        return owner_id(self.actor)

    def environment(self, name: str) -> EnvironmentConfig:
        return self.project.environment(name)

    def factory(self, env: EnvironmentConfig) -> PlatformFactory:
        platform = str(env.platform)
        if platform not in self._factories:
            self._factories[platform] = FACTORIES[platform](self.project, self.clock)
        return self._factories[platform]

    def context(self, env_name: str, sink: EventSink) -> Context:
        env = self.environment(env_name)
        factory = self.factory(env)
        store, locks = factory.stores(env)
        return Context(
            store=store,
            locks=locks,
            clock=self.clock,
            sink=sink,
            platform_for=lambda ref: factory.platform(env, self.project.service(ref.service)),
            actor=self.actor,
            owner=self.owner,
            stores=self.store,
            settings=EngineSettings(lease_ttl=float(self.project.config.defaults.lock_ttl)),
            requires=self.requirements(env_name),
            observer=self.observer(env_name, store, sink),
            resumable=partial(factory.resumable, env) if isinstance(factory, ResumeRules) else None,
        )

    def observer(self, env_name: str, store: StateStore, sink: EventSink) -> RunObserver | None:
        """What watches runs in ``env_name``: their trace (OTLP, the local span store) and
        notifications (``notify:``); ``pipeline.observe.wiring``."""
        env = self.environment(env_name)
        factory = self.factory(env)
        home = factory.state_dir if isinstance(factory, LocalFactory) else None
        session = (lambda: factory.session(env)) if isinstance(factory, AwsFactory) else None
        return observer_for(env, clock=self.clock, store=store, sink=sink, local_home=home, session=session)

    def traced(self, env_name: str, name: str, **attributes: str) -> AbstractContextManager[dict[str, Any]]:
        """A root span around a command that runs no deployment (``pipeline loadtest``), where
        ``env_name``'s runs are traced; yields a dict of facts set on the span at its end."""
        env = self.environment(env_name)
        factory = self.factory(env)
        tracer = tracer_for(env, self.clock, factory.state_dir if isinstance(factory, LocalFactory) else None)
        if tracer is None:
            return nullcontext({})
        return tracer.command(name, {"pipeline.environment": env_name, **attributes})

    def identity(self, env_name: str) -> Identity:
        """Who runs this command, from a source the caller cannot set: on an AWS environment
        the STS caller ARN of the ambient credentials, else the OS account (unverified)."""
        factory = self.factory(self.environment(env_name))
        if isinstance(factory, AwsFactory):
            return Identity(factory.session(self.environment(env_name)).caller_arn(), "aws-sts")
        return os_account()

    def override(self, env_name: str, reason: str) -> Override:
        """A break-glass request by this caller's identity (``requirements.authorise`` decides)."""
        return Override(reason, self.identity(env_name))

    def store(self, env_name: str) -> StateStore:
        env = self.environment(env_name)
        return self.factory(env).stores(env)[0]

    def api_keys(self, env_name: str) -> ApiKeys:
        """The API keys of ``env_name``'s services (``pipeline keys``), from its platform."""
        env = self.environment(env_name)
        factory = self.factory(env)
        if not isinstance(factory, ApiKeysFactory):
            raise UsageError(f"API keys are not available on {env_name}'s platform ({env.platform})",
                             hint="manage keys where the service's api: edge runs")
        return factory.api_keys(env)

    def registry(self, env_name: str) -> ImageRegistry:
        env = self.environment(env_name)
        return self.factory(env).registry(env)

    def strategy(self, service: str, env_name: str) -> Strategy:
        """The service's strategy as the environment shapes it (synthetic traffic,
        on_inconclusive, max_pause); on AWS, ECS slots wait for the ALB weights to settle
        before they are scaled down (ECS then drains their targets itself)."""
        env = self.environment(env_name)
        strategy = env.shape(strategy_for(self.project, service))
        factory = self.factory(env)
        if isinstance(factory, StrategyRules):  # the platform's own rules (AWS: the ECS drain)
            strategy = factory.strategy(env, self.project.service(service), strategy)
        return strategy

    def release(self, service: str, env_name: str, image: str | None, ref: str | None) -> Release:
        """Resolve ``--image`` (a reference with a digest) or ``--ref`` (default HEAD)."""
        self.project.service(service)
        pinned = ImageRef.parse(image) if image else None
        if pinned is not None and self.environment(env_name).platform != "local":
            return pinned.release(service, commit=ref or "")
        # a local registry knows its stored releases, commit included
        return self.registry(env_name).resolve(service, image or ref or "HEAD")

    def requirements(self, env_name: str) -> Requirements:
        """What ``env_name`` demands of a release: environments passed, and whose approval
        (its members, and whether only GitHub-verified approvals count); whether OS-account
        identities count, and who may break glass (the owning organisation's members)."""
        env = self.environment(env_name)
        req, orgs = env.requires, self.project.config.organisations
        owners = orgs[env.owner].members if env.owner in orgs else ()
        base = Requirements(
            passed=tuple(req.passed),
            unverified=env.allows_unverified(),
            owner=env.owner,
            owners=frozenset(owners) if owners else None,
        )
        if req.approval is None:
            return base
        org = orgs[req.approval]
        return replace(
            base,
            approval=req.approval,
            approvers=frozenset(org.members) if org.members else None,
            verified="github" if org.github else None,
        )

    def writable(self, env_name: str, what: str) -> None:
        """UsageError (exit 2) when ``env_name`` is declared ``access: read`` in the project
        file: its history, status and requirements may be read here, nothing changed."""
        env = self.environment(env_name)
        if env.access == "read":
            raise UsageError(
                f"cannot {what} {env_name}: {self.project.project_file} gives this project read access only "
                "(`access: read`: history, status and requirements)",
                hint=f"run it from the repository whose pipeline.yaml deploys to {env_name}",
            )

    def guarded(self, service: str, env_name: str) -> str | None:
        """The owning organisation when ``env_name`` belongs to another organisation than
        the service (e.g. Ops' production for a Dev service), else None."""
        owner = self.environment(env_name).owner
        return owner if owner != self.project.service(service).owner else None

    def ref(self, service: str, env_name: str) -> ServiceRef:
        self.project.service(service)
        self.environment(env_name)
        return ServiceRef(service, env_name)
