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

import math
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


def env_number(environ: Mapping[str, str], name: str, default: float, *, zero_ok: bool = False,
               infinite_ok: bool = False) -> float:
    """``$name`` as a number, ``default`` when unset or blank (a setting of the plane's own
    environment). ValueError names the variable and its value unless it is a positive number
    (or 0, with ``zero_ok``; ``inf`` only with ``infinite_ok``; never NaN)."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    in_range = value >= 0 if zero_ok else value > 0  # False for NaN
    if not in_range or (math.isinf(value) and not infinite_ok):
        what = "a number of 0 or more" if zero_ok else "a positive number"
        raise ValueError(f"${name}={raw!r} is not {what}; unset it to use {default:g}")
    return value
