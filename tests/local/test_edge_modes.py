"""The edge's key modes and the pipeline's synthetic key, over real HTTP to an in-process
router listener whose handler is ``Edge.serve`` in front of a counting "service" (no plane
needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from pipeline.local.http.edge import Edge
from pipeline.local.http.edge_keys import EdgeKeyStore
from pipeline.local.http.edge_parts import EdgePolicy
from pipeline.local.http.listener import serve
from pipeline.local.messages import Answer, Request

Check = Callable[[aiohttp.ClientSession, Edge, list[str]], Awaitable[None]]


def run(tmp_path: Path, policy: dict[str, Any], check: Check) -> None:
    edge = Edge("dev", "svc", EdgePolicy.from_dict(policy), EdgeKeyStore(tmp_path))
    reached: list[str] = []

    async def handler(request: Request) -> Answer:
        async def forward() -> Answer:
            reached.append(request.target)
            return Answer(200, str(len(reached)).encode())

        return await edge.serve(request, forward)

    async def main() -> None:
        server = await serve(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as client:
                await check(client, edge, reached)
        finally:
            server.close()

    asyncio.run(main())


SLOW = {"plans": {"slow": {"rate": 1 / 60, "burst": 1}}, "default_plan": "slow"}


def test_optional_keys_admit_anonymous_callers_but_check_a_key_that_is_sent(tmp_path: Path) -> None:
    async def check(client: aiohttp.ClientSession, edge: Edge, reached: list[str]) -> None:
        assert [(await client.get("/a")).status for _ in range(3)] == [200, 200, 200]  # not throttled
        assert (await client.get("/a", headers={"x-api-key": "wrong"})).status == 403
        _, secret = edge.keys.create("dev", "svc", "k", None)
        assert (await client.get("/a", headers={"x-api-key": secret})).status == 200
        throttled = await client.get("/a", headers={"x-api-key": secret})
        assert throttled.status == 429 and throttled.headers["Retry-After"] == "60"
        assert len(reached) == 4

    run(tmp_path, {"keys": "optional", **SLOW}, check)


def test_keys_none_ignores_the_header(tmp_path: Path) -> None:
    async def check(client: aiohttp.ClientSession, edge: Edge, reached: list[str]) -> None:
        assert (await client.get("/a", headers={"x-api-key": "anything"})).status == 200

    run(tmp_path, {"keys": "none"}, check)


def test_the_synthetic_key_passes_keys_plans_and_cache_but_not_the_cidr_lists(tmp_path: Path) -> None:
    cache = {"ttl": 60.0, "methods": ["GET"]}

    async def check(client: aiohttp.ClientSession, edge: Edge, reached: list[str]) -> None:
        synthetic = {"x-api-key": edge.keys.synthetic_secret("dev", "svc")}
        answers = [await client.get("/s", headers=synthetic) for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 200]  # the plan would allow one
        assert [a.headers.get("x-cache") for a in answers] == [None, None, None] and len(reached) == 3
        assert edge.keys.synthetic_secret("dev", "other") != synthetic["x-api-key"]
        edge.policy = EdgePolicy.from_dict({"keys": "required", **SLOW, "allow": ["10.0.0.0/8"]})
        assert (await client.get("/s", headers=synthetic)).status == 403

    run(tmp_path, {"keys": "required", **SLOW, "cache": cache}, check)
