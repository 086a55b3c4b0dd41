"""The ``api:`` block of service.yaml: parsing, and contradictions reported with file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_project
from pipeline.config.api import ApiConfig, parse_quota, parse_rate, planned_requests
from pipeline.core.errors import ConfigError
from tests.unit.support.project import REPO_ROOT, WriteProject

PIPELINE = """
    project: shop
    organisations: {dev: {}}
    environments:
      dev: {platform: local, owner: dev, local: {port: 8100}}
    """

NOTIFY = """
    name: notify
    kind: lambda
    owner: dev
    paths: [services/notify/**]
    build: {context: services/notify}
    lambda:
      handler: handler.handle
      route: {path: /notify*, priority: 30}
    load:
      locustfile: loadtests/notify.py
      users: 10
      duration: 20s
      thresholds: {min_rps: 5}
    """


def problems_of(write_project: WriteProject, api: str) -> list[str]:
    root: Path = write_project(PIPELINE, {"notify": NOTIFY + api})
    with pytest.raises(ConfigError) as info:
        load_project(root)
    return info.value.problems


def test_parses_the_whole_block_into_frozen_models(write_project: WriteProject) -> None:
    root = write_project(PIPELINE, {"notify": NOTIFY + """
    api:
      keys: required
      default_plan: partner
      plans:
        partner: {rate: 20/s, burst: 40, quota: 10000/day}
        slow: {rate: 600/m}
      allow_cidrs: [10.0.0.0/8, 127.0.0.0/8]
      deny_cidrs: [127.0.0.9/32]
      cache: {ttl: 30s, key: {headers: [accept-language], query: [page]}, methods: [GET, HEAD]}
    """})

    api = load_project(root).service("notify").api

    assert api is not None
    assert api.keys == "required"
    assert api.plans["partner"].rate == 20.0 and api.plans["partner"].bucket == 40
    assert api.plans["partner"].quota == 10000
    assert api.plans["slow"].rate == 10.0 and api.plans["slow"].bucket == 10
    assert api.plan(None) == api.plans["partner"]
    assert api.allow_cidrs == ("10.0.0.0/8", "127.0.0.0/8")
    assert api.cache is not None and api.cache.ttl == 30.0
    assert api.cache.key.headers == ("accept-language",) and api.cache.key.query == ("page",)
    assert api.cache.cached_methods == {"GET", "HEAD"} and api.cache.invalidate_on_deploy


def test_reports_every_contradiction_at_once_with_its_line(write_project: WriteProject) -> None:
    found = problems_of(write_project, """
    api:
      keys: none
      default_plan: gold
      plans:
        partner: {rate: 20/s, quota: 50/day}
      allow_cidrs: [10.0.0.1/8, not-a-net]
      cache: {ttl: 1s, methods: [GET, POST]}
    """)

    assert found == [
        "services/notify/service.yaml:20: api.allow_cidrs[0]: '10.0.0.1/8' is not a CIDR block: "
        "10.0.0.1/8 has host bits set; write it like 10.0.0.0/8 (host bits zero)",
        "services/notify/service.yaml:20: api.allow_cidrs[1]: 'not-a-net' is not a CIDR block: "
        "'not-a-net' does not appear to be an IPv4 or IPv6 network; "
        "write it like 10.0.0.0/8 (host bits zero)",
        "services/notify/service.yaml:21: api.cache.methods[1]: POST responses cannot be cached: "
        "only GET and HEAD are; remove it from cache.methods",
    ]


def test_keys_none_with_plans_and_an_undefined_plan_are_reported(write_project: WriteProject) -> None:
    found = problems_of(write_project, """
    api:
      keys: none
      default_plan: gold
      plans:
        partner: {rate: 20/s}
    """)

    assert found == [
        "services/notify/service.yaml:17: api.default_plan: plan 'gold' is not defined in plans "
        "(partner): define it or name another one",
        "services/notify/service.yaml:18: api.plans: usage plans need API keys but keys is none: "
        "set keys: required (or optional), or remove plans",
    ]


def test_a_quota_below_the_load_stages_planned_requests_is_reported(write_project: WriteProject) -> None:
    # min_rps 5 x 20s = 100 planned requests
    found = problems_of(write_project, """
    api:
      keys: required
      plans:
        partner: {rate: 20/s, quota: 99/day}
        big: {rate: 20/s, quota: 100/day}
    """)

    assert found == [
        "services/notify/service.yaml:18: api.plans.partner.quota: quota 99/day is lower than the "
        "load stage's planned 100 requests (min_rps x duration): one load stage would exhaust it; "
        "raise the quota or shorten the load stage",
    ]


def test_bad_rates_quotas_and_unknown_keys_say_what_to_write(write_project: WriteProject) -> None:
    found = problems_of(write_project, """
    api:
      keys: maybe
      plans:
        partner: {rate: 20 per second, quota: 5/week, burst: 0}
      cache: {ttl: 2h, colour: red}
    """)

    assert found == [
        "services/notify/service.yaml:16: api.keys: must be 'required', 'optional' or 'none', got 'maybe'",
        "services/notify/service.yaml:18: api.plans.partner.rate: bad rate '20 per second': "
        "use 20/s, 600/m, 3600/h or a number per second",
        "services/notify/service.yaml:18: api.plans.partner.burst: must be greater than or equal to 1, got 0",
        "services/notify/service.yaml:18: api.plans.partner.quota: bad quota '5/week': "
        "use a number of requests per day, e.g. 10000/day",
        "services/notify/service.yaml:19: api.cache.ttl: 2h is out of range: must be between 0s and 60m",
        "services/notify/service.yaml:19: api.cache.colour: unknown key 'colour': "
        "allowed here: ttl, key, methods, invalidate_on_deploy",
    ]


def test_rate_and_quota_forms() -> None:
    assert parse_rate("20/s") == 20.0 and parse_rate("600/m") == 10.0 and parse_rate(2) == 2.0
    assert parse_rate("3600/h") == 1.0
    assert parse_quota("10000/day") == 10000 and parse_quota(7) == 7
    for bad in ("0/s", "-1", True, "5/fortnight"):
        with pytest.raises(ValueError, match="bad rate"):
            parse_rate(bad)
    with pytest.raises(ValueError, match="bad quota"):
        parse_quota(0)
    assert planned_requests(10, 20.0, None) == 200
    assert planned_requests(10, 20.0, 5.0) == 100



def test_the_example_notify_service_declares_a_keyed_api() -> None:
    api = load_project(REPO_ROOT).service("notify").api
    assert isinstance(api, ApiConfig) and api.keys == "required"
    assert "127.0.0.0/8" in api.allow_cidrs


def test_plans_declare_named_keys_and_a_name_in_two_plans_is_reported(write_project: WriteProject) -> None:
    root = write_project(PIPELINE, {"notify": NOTIFY + """
    api:
      keys: required
      plans:
        partner: {rate: 20/s, keys: [acme, globex]}
        free: {rate: 2}
    """})
    api = load_project(root).service("notify").api
    assert api is not None and api.plans["partner"].keys == ("acme", "globex")
    assert api.declared_keys == {"acme": "partner", "globex": "partner"}

    found = problems_of(write_project, """
    api:
      keys: required
      plans:
        partner: {rate: 20/s, keys: [acme, globex, "bad name", "acme\\n"]}
        free: {rate: 2, keys: [globex, solo, solo]}
    """)

    assert found == [
        "services/notify/service.yaml:18: api.plans.partner.keys[2]: 'bad name' is not a key name "
        "(1-64 letters, digits, '.', '_', '-')",
        "services/notify/service.yaml:18: api.plans.partner.keys[3]: 'acme\\n' is not a key name "
        "(1-64 letters, digits, '.', '_', '-')",
    ]
    found = problems_of(write_project, """
    api:
      keys: required
      plans:
        partner: {rate: 20/s, keys: [acme, globex]}
        free: {rate: 2, keys: [globex, solo, solo]}
    """)
    assert found == [
        "services/notify/service.yaml:19: api.plans.free.keys[0]: key globex is already declared in "
        "plan partner: a key has one plan; keep one of the two",
        "services/notify/service.yaml:19: api.plans.free.keys[2]: key solo is already declared in "
        "this plan: a key has one plan; keep one of the two",
    ]
