"""The state of a running plane: environments' routers, the supervisor, counters, Lambda.

Everything lives on the plane process's one event loop, so every mutation is atomic with
respect to request routing. The desired state (environments and ports, routes, weights,
test slots, the release each slot runs) is written to ``plane-state.json`` after every
change, and ``start()`` brings it back: a plane restarted with ``pipeline local up``
serves what it served before ``down``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp

from pipeline.core.model import Slot, Weights
from pipeline.local.http import tracing as router_tracing
from pipeline.local.http.counters import CounterBook, WindowStats
from pipeline.local.http.dataplane import DataPlane
from pipeline.local.http.edge import EdgeBook
from pipeline.local.http.router import EnvironmentRouter, LambdaInvoker, close_quietly
from pipeline.local.http.rules import PathRule, WeightedPicker
from pipeline.local.http.slots import ServiceRoute
from pipeline.local.replicas.supervisor import SlotKey, Supervisor
from pipeline.local.specs import ReleaseSpec, RouteSpec

log = logging.getLogger("pipeline.local.plane")


class PlaneRequestError(Exception):
    """A control request the plane refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint


class Plane:
    """Routers, replicas and counters of every environment of one project ``state_dir``."""

    def __init__(self, state_dir: Path, plane_id: str, http: aiohttp.ClientSession,
                 invoke_lambda: LambdaInvoker | None = None, data_plane: DataPlane | None = None) -> None:
        self.state_dir = state_dir
        self.data_plane = data_plane  # the routers' own loop and thread, when given
        self.id = plane_id
        self.http = http
        self.counters = CounterBook()
        self.edges = EdgeBook(state_dir)  # services' api rules and keys (pipeline.local.http.edge)
        self.supervisor = Supervisor(state_dir / "logs", http)
        self.routers: dict[str, EnvironmentRouter] = {}
        self._invoke_lambda = invoke_lambda
        self._desired: dict[str, Any] = {"environments": {}}
        self._state_file = state_dir / "plane-state.json"

    # --- environments and routes -----------------------------------------------------

    async def put_environment(self, env: str, port: int) -> bool:
        """Serve ``env`` on ``port`` and ``port + 1``. Idempotent; moves listeners if the port changed."""
        router = self.routers.get(env)
        if router is not None and router.port == port:
            return False
        fresh = EnvironmentRouter(env, port, supervisor=self.supervisor, counters=self.counters,
                                  http=self.http, invoke_lambda=self._invoke_lambda,
                                  data_plane=self.data_plane, edges=self.edges)
        if router is not None:
            await router.stop()
            fresh.rules, fresh.services = router.rules, router.services
        try:
            await fresh.start()
        except OSError as exc:
            if router is not None:
                del self.routers[env]
            raise PlaneRequestError(
                409,
                f"cannot serve environment {env} on 127.0.0.1:{port} and :{port + 1}: {exc.strerror or exc}",
                f"free those ports or set environments.{env}.local.port in pipeline.yaml to another one",
            ) from exc
        self.routers[env] = fresh
        self._desired["environments"].setdefault(env, {"services": {}})["port"] = port
        self._save()
        return True

    def put_route(self, env: str, service: str, route: RouteSpec) -> None:
        """Add or replace ``service``'s rule on ``env``'s listeners. Idempotent."""
        router = self._router(env)
        router.put_route(PathRule(service, route.pattern, route.priority, route.kind))
        self._service_doc(env, service)["route"] = route.to_dict()
        self._save()

    # --- slots ---------------------------------------------------------------------------

    def provision(self, env: str, service: str, slot: Slot, spec: ReleaseSpec) -> bool:
        """Run ``spec`` in ``slot`` and make it the test route's default slot. Idempotent."""
        route = self._route(env, service)
        changed = self.supervisor.provision(SlotKey(env, service, slot.value), spec)
        if changed:
            self.edges.deployed(env, service)  # a new release: cached answers may be stale
        route.test_slot = slot
        doc = self._service_doc(env, service)
        doc["test_slot"] = slot.value
        doc.setdefault("slots", {})[slot.value] = spec.to_dict()
        self._save()
        return changed

    async def scale_down(self, env: str, service: str, slot: Slot) -> bool:
        """Drain and stop ``slot``; returns when its processes are gone. Idempotent."""
        self._route(env, service)
        self._service_doc(env, service).get("slots", {}).pop(slot.value, None)
        self._save()
        return await self.supervisor.scale_down(SlotKey(env, service, slot.value))

    def health(self, env: str, service: str, slot: Slot, digest: str) -> dict[str, object]:
        self._route(env, service)
        return self.supervisor.health(SlotKey(env, service, slot.value), digest)

    # --- traffic -------------------------------------------------------------------------

    def set_weights(self, env: str, service: str, weights: Weights) -> None:
        """Replace the split atomically (the next request uses it). Idempotent."""
        route = self._route(env, service)
        if route.weights != weights:
            route.picker = WeightedPicker(weights)
            self.edges.deployed(env, service)
        self._service_doc(env, service)["weights"] = weights.to_dict()
        self._save()

    def weights(self, env: str, service: str) -> Weights | None:
        return self._route(env, service).weights

    def measure(self, env: str, service: str, slot: Slot, since: float, until: float) -> WindowStats:
        self._route(env, service)
        return self.counters.of(env, service, slot.value).window(since, until)

    # --- whole plane ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        envs: dict[str, Any] = {}
        for name, router in sorted(self.routers.items()):
            services: dict[str, Any] = {}
            for service, route in sorted(router.services.items()):
                slots = {}
                for slot in Slot:
                    replica_set = self.supervisor.get(SlotKey(name, service, slot.value))
                    counters = self.counters.peek(name, service, slot.value)
                    if replica_set is not None or counters is not None:
                        slots[slot.value] = {
                            **(replica_set.snapshot() if replica_set else {"replicas": []}),
                            "requests": counters.total_requests if counters else 0,
                            "errors": counters.total_errors if counters else 0,
                        }
                services[service] = {
                    "path": route.rule.pattern, "priority": route.rule.priority, "kind": route.rule.kind,
                    "weights": route.weights.to_dict() if route.weights else None,
                    "test_slot": route.test_slot.value if route.test_slot else None, "slots": slots,
                }
            envs[name] = {"port": router.port, "test_port": router.test_port, "services": services}
        return {"id": self.id, "pid": os.getpid(), "environments": envs,
                "router_spans": router_tracing.writer_stats()}  # None: the router records no spans

    async def restore(self) -> None:
        """Bring back the desired state saved by a previous plane (best effort, logged)."""
        try:
            saved = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self._state_file, exc)
            return
        if not isinstance(saved, dict) or not isinstance(saved.get("environments"), dict):
            log.warning("ignoring %s: not a plane state document", self._state_file)
            return
        self._desired = saved  # replayed below; what cannot be restored stays wanted
        for env, doc in list(saved["environments"].items()):
            try:
                await self._restore_environment(env, doc)
            except (PlaneRequestError, KeyError, TypeError, ValueError) as exc:
                log.warning("could not restore environment %s: %s", env, exc)

    async def close(self) -> None:
        for router in list(self.routers.values()):
            await close_quietly(router)
        await self.supervisor.close()

    # --- internals -----------------------------------------------------------------------

    async def _restore_environment(self, env: str, doc: dict[str, Any]) -> None:
        await self.put_environment(env, int(doc["port"]))
        for service, sdoc in list(doc.get("services", {}).items()):
            if "route" not in sdoc:
                continue
            self.put_route(env, service, RouteSpec.from_dict(sdoc["route"]))
            if sdoc.get("weights"):
                self.set_weights(env, service, Weights(**sdoc["weights"]))
            for slot, spec in list(sdoc.get("slots", {}).items()):
                release = ReleaseSpec.from_dict(spec)
                if Path(release.snapshot).is_dir():
                    self.provision(env, service, Slot(slot), release)
                else:
                    log.warning("not restoring %s/%s/%s: %s is gone", env, service, slot, release.snapshot)
            if sdoc.get("test_slot"):
                self._route(env, service).test_slot = Slot(sdoc["test_slot"])

    def _router(self, env: str) -> EnvironmentRouter:
        router = self.routers.get(env)
        if router is None:
            raise PlaneRequestError(404, f"the plane does not serve environment {env}",
                                    "register it first: PUT /v1/envs/<env> with its port")
        return router

    def _route(self, env: str, service: str) -> ServiceRoute:
        route = self._router(env).services.get(service)
        if route is None:
            raise PlaneRequestError(404, f"environment {env} has no route for service {service}",
                                    "register it first: PUT /v1/envs/<env>/services/<service>")
        return route

    def _service_doc(self, env: str, service: str) -> dict[str, Any]:
        env_doc = self._desired["environments"].setdefault(env, {"services": {}})
        services: dict[str, dict[str, Any]] = env_doc.setdefault("services", {})
        return services.setdefault(service, {})

    def _save(self) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self._desired, indent=1, sort_keys=True))
            os.replace(tmp, self._state_file)
