"""The local edge's pieces without a network: token buckets, daily quotas, CIDR judgement,
the policy document, the key store's hashing and the metrics figures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pipeline.config.api import ApiConfig
from pipeline.core.edge import EdgeCounts
from pipeline.local.api_keys import edge_figures, policy_document
from pipeline.local.http.edge_keys import EdgeKeyStore, KeyRefused
from pipeline.local.http.edge_parts import DailyQuota, EdgePolicy, PlanLimits, TokenBucket, retry_after


def test_a_bucket_grants_its_burst_then_says_when_the_next_token_comes() -> None:
    bucket = TokenBucket(PlanLimits(rate=2.0, burst=3), now=100.0)

    assert [bucket.take(100.0) for _ in range(3)] == [None, None, None]
    assert bucket.take(100.0) == pytest.approx(0.5)
    assert bucket.take(100.25) == pytest.approx(0.25)  # half a token came back
    assert bucket.take(100.5) is None
    assert bucket.take(110.0) is None and bucket.tokens == pytest.approx(2.0)  # capped at burst


def test_a_quota_counts_a_utc_day_and_points_at_midnight() -> None:
    quota = DailyQuota()
    noon = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC).timestamp()

    assert [quota.take(2, noon), quota.take(2, noon + 1)] == [None, None]
    assert quota.take(2, noon + 2) == pytest.approx(12 * 3600 - 2)
    assert quota.take(2, noon + 12 * 3600) is None  # the next UTC day
    assert retry_after(0.2) == "1" and retry_after(59.01) == "60"


def test_deny_wins_and_an_allow_list_admits_only_its_networks() -> None:
    policy = EdgePolicy.from_dict({"allow": ["127.0.0.0/8", "2001:db8::/32"], "deny": ["127.0.0.9/32"]})

    assert policy.admits("127.0.0.1") and policy.admits("2001:db8::1")
    assert policy.admits("::ffff:127.0.0.1")  # an IPv4 peer on a dual-stack socket
    assert not policy.admits("127.0.0.9") and not policy.admits("10.0.0.1")
    assert not policy.admits(None) and not policy.admits("garbage")
    assert EdgePolicy().admits(None)  # no lists: everyone


def test_the_policy_document_of_an_api_block_round_trips() -> None:
    api = ApiConfig.model_validate({
        "keys": "required", "default_plan": "p", "plans": {"p": {"rate": "600/m", "quota": "5/day"}},
        "allow_cidrs": ["10.0.0.0/8"],
        "cache": {"ttl": "30s", "key": {"headers": ["Accept"], "query": ["q"]}},
    })

    policy = EdgePolicy.from_dict(json.loads(json.dumps(policy_document(api))))

    assert policy.limits(None) == PlanLimits(rate=10.0, burst=10, quota=5)
    assert policy.cache is not None and policy.cache.headers == ("accept",) and policy.cache.ttl == 30.0
    assert EdgePolicy.from_dict(policy.to_dict()) == policy


def test_the_key_store_keeps_no_secret_and_finds_keys_by_hash(tmp_path: Path) -> None:
    store = EdgeKeyStore(tmp_path)
    key, secret = store.create("dev", "notify", "mobile", "partner")

    assert len(secret) == 40 and key.hint == secret[:4]
    assert secret not in (tmp_path / "edge-keys.json").read_text()
    assert (tmp_path / "edge-keys.json").stat().st_mode & 0o777 == 0o600
    reopened = EdgeKeyStore(tmp_path)  # the same plane folder after a restart
    assert reopened.lookup("dev", "notify", secret) == key
    assert reopened.lookup("prod", "notify", secret) is None  # keys belong to one env and service
    assert reopened.revoke("dev", "notify", "mobile").revoked is not None
    with pytest.raises(KeyRefused, match="already has a key named mobile"):
        reopened.create("dev", "notify", "mobile", None)
    with pytest.raises(KeyRefused, match="no key named ghost"):
        reopened.revoke("dev", "notify", "ghost")
    assert reopened.synthetic_secret("dev", "notify") == store.synthetic_secret("dev", "notify")
    assert reopened.synthetic_secret("dev", "notify") != store.synthetic_secret("dev", "orders")


def test_edge_figures_total_every_key() -> None:
    figures = dict(edge_figures([EdgeCounts("a", 3, 1, 2, 0), EdgeCounts("", 0, 0, 0, 4)]))

    assert figures == {"edge_cache_hits": 3, "edge_cache_misses": 1, "edge_throttled": 2, "edge_denied": 4,
                       "edge_cache_hit_ratio": 0.75}
    assert "edge_cache_hit_ratio" not in dict(edge_figures([]))
