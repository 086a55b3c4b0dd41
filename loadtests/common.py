"""Shared helpers for the locustfiles: a base user and JSON checks that mark failures.

Locustfiles import this module as ``common`` (locust puts the locustfile's folder on
``sys.path``). Every user waits between tasks: an unthrottled user saturates a core and
measures the load generator instead of the service.

With ``PIPELINE_API_KEY`` set, every request sends it as ``x-api-key`` (a service whose
``api:`` block requires keys; see docs/api-edge.md).
"""

from __future__ import annotations

import json
import os
from typing import Any

from locust import FastHttpUser, between

JSON = dict[str, Any]
KEY_HEADERS = {"x-api-key": os.environ["PIPELINE_API_KEY"]} if os.environ.get("PIPELINE_API_KEY") else {}


class ApiUser(FastHttpUser):
    """A JSON API client on locust's fast HTTP client (about 4.5x the requests per core).

    ``get_json``/``post_json`` mark a request failed unless its status is one of
    ``expect`` and its body is a JSON object holding every key in ``keys``; they return
    the parsed body, or None after a failure.
    """

    abstract = True
    wait_time = between(0.05, 0.2)
    connection_timeout = 5.0
    network_timeout = 10.0

    def get_json(
        self,
        path: str,
        *,
        name: str | None = None,
        expect: tuple[int, ...] = (200,),
        keys: tuple[str, ...] = (),
    ) -> JSON | None:
        with self.client.get(path, name=name or path, headers=KEY_HEADERS, catch_response=True) as response:
            return check_json(response, expect, keys)

    def post_json(
        self,
        path: str,
        body: JSON,
        *,
        name: str | None = None,
        expect: tuple[int, ...] = (200, 201, 202),
        keys: tuple[str, ...] = (),
    ) -> JSON | None:
        with self.client.post(path, json=body, name=name or path, headers=KEY_HEADERS,
                              catch_response=True) as response:
            return check_json(response, expect, keys)


def check_json(response: Any, expect: tuple[int, ...], keys: tuple[str, ...]) -> JSON | None:
    """Mark ``response`` (a locust catch_response context) passed or failed; see ApiUser."""
    if response.status_code not in expect:
        response.failure(f"HTTP {response.status_code}, expected {'/'.join(map(str, expect))}")
        return None
    try:
        data = json.loads(response.text or "")
    except ValueError:
        response.failure("response is not JSON")
        return None
    if not isinstance(data, dict):
        response.failure("response is not a JSON object")
        return None
    missing = [key for key in keys if key not in data]
    if missing:
        response.failure(f"response lacks {', '.join(missing)}")
        return None
    response.success()
    return data
