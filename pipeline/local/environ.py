"""The environment a process started by the local platform gets (replicas, Lambda workers).

Children do not inherit the deployer's environment: it holds cloud keys and tokens
(``AWS_SECRET_ACCESS_KEY``, ``GITHUB_TOKEN``, ...) that a service has no business seeing,
as an ECS task or a Lambda function sees only what its definition sets. A child starts
from ``ALLOWED`` (and ``LC_*``) taken from the plane's environment, then the service's
configured environment, then what the platform itself sets (``PORT``, ``PIPELINE_*``, or
``AWS_LAMBDA_*`` for a Lambda worker), later ones winning.

``PIPELINE_PLANE_ID`` is always passed on: it is how ``pipeline local down`` finds every
process of a plane, even after the plane itself was killed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ALLOWED = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "SSL_CERT_FILE",
           "SSL_CERT_DIR", "PIPELINE_PLANE_ID", "PIPELINE_TRACING", "PIPELINE_TRACES_ENDPOINT",
           "PIPELINE_TRACES_KEY", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
"""Variables passed on from the plane, with every ``LC_*`` locale variable: where programs
are, whose they are, locale and time zone, scratch space, which TLS roots to trust, where
trace spans go (the plane's receiver and its span-only key, a collector's URL; never the
collector's headers, which may hold credentials)."""


def child_environment(configured: Mapping[str, str], platform: Mapping[str, str],
                      inherited: Mapping[str, str] | None = None) -> dict[str, str]:
    """``ALLOWED`` and ``LC_*`` of ``inherited`` (default ``os.environ``), then ``configured``
    (the service's environment), then ``platform`` (what the platform sets)."""
    source = os.environ if inherited is None else inherited
    env = {k: v for k, v in source.items() if k in ALLOWED or k.startswith("LC_")}
    env.update(configured)
    env.update(platform)
    return env
