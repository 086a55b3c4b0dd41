"""The plane's control API is not an open door: real plane, real HTTP, hostile requests.

Without the token, with a wrong one, with a body a web page can send cross-origin
(text/plain), through a rebound host name or from a foreign origin, a request is refused
before it does anything; a provision request naming a command or a snapshot folder is
refused; the token and the plane's folder are private; a Lambda package is taken only as
uploaded bytes, never from a path, and a zip bomb is refused before it is unpacked.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import stat
import zipfile
from pathlib import Path

import pytest

from pipeline.clock import SystemClock
from pipeline.config import load_project
from pipeline.core.model import ServiceRef
from pipeline.local.factory import LocalFactory
from pipeline.local.plane.lifecycle import PlaneInfo
from tests.local.support.plane import Project

SECRET_COMMAND = ["sh", "-c", "touch /tmp/pwned-by-plane-test"]


def _call(info: PlaneInfo, method: str, path: str, body: object = None, *, token: str | None = None,
          content_type: str = "application/json", host: str | None = None,
          origin: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Host": host or f"127.0.0.1:{info.port}", "Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if origin is not None:
        headers["Origin"] = origin
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    conn = http.client.HTTPConnection("127.0.0.1", info.port, timeout=30)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def _served(info: PlaneInfo) -> dict[str, object]:
    status, data = _call(info, "GET", "/v1/status", token=info.token)
    assert status == 200
    environments = data["environments"]
    assert isinstance(environments, dict)
    return environments


def test_a_request_without_the_token_or_with_a_wrong_one_is_refused(plane: PlaneInfo) -> None:
    assert len(plane.token) >= 40
    for token in (None, "", "not-the-token", plane.token[:-1]):
        status, data = _call(plane, "PUT", "/v1/envs/dev", {"port": 1}, token=token)
        assert status == 401, (token, data)
        assert "token" in str(data["error"])
    status, _ = _call(plane, "GET", "/v1/status", token=None)
    assert status == 401
    status, _ = _call(plane, "GET", "/lambda/functions/anything", token="wrong")
    assert status == 401  # the Lambda runtime's API is behind the same door
    assert _served(plane) == {}  # nothing was done


def test_a_body_a_web_page_can_send_cross_origin_is_refused(plane: PlaneInfo) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, data = _call(plane, "POST", "/v1/shutdown", b"{}", token=plane.token,
                             content_type=content_type)
        assert status == 415, data
    assert _call(plane, "GET", "/v1/status", token=plane.token)[0] == 200  # still running


def test_a_foreign_host_or_origin_is_refused(plane: PlaneInfo) -> None:
    for host in ("evil.example", f"evil.example:{plane.port}", f"127.0.0.1:{plane.port + 1}",
                 f"rebind.127.0.0.1.nip.io:{plane.port}"):
        status, data = _call(plane, "PUT", "/v1/envs/dev", {"port": 1}, token=plane.token, host=host)
        assert status == 403 and "Host" in str(data["error"]), (host, data)
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{plane.port + 1}"):
        status, data = _call(plane, "GET", "/v1/status", token=plane.token, origin=origin)
        assert status == 403 and "origin" in str(data["error"]), (origin, data)
    for host in (f"localhost:{plane.port}", f"[::1]:{plane.port}"):
        assert _call(plane, "GET", "/v1/status", token=plane.token, host=host)[0] == 200
    own = f"http://127.0.0.1:{plane.port}"
    assert _call(plane, "GET", "/v1/status", token=plane.token, origin=own)[0] == 200


def test_a_provision_request_naming_a_command_or_a_snapshot_is_refused(
    project: Project, plane: PlaneInfo, tmp_path: Path
) -> None:
    assert _call(plane, "PUT", "/v1/envs/dev", {"port": project.port}, token=plane.token)[0] == 200
    route = {"pattern": "/orders*", "priority": 10}
    assert _call(plane, "PUT", "/v1/envs/dev/services/orders", route, token=plane.token)[0] == 200
    slot = "/v1/envs/dev/services/orders/slots/blue"
    old_style = {"service": "orders", "environment": "dev", "version": "x", "digest": "sha256:" + "0" * 64,
                 "snapshot": str(tmp_path), "command": SECRET_COMMAND, "cwd": ".", "env": {}}
    for body in (old_style, {"digest": "sha256:" + "0" * 64, "command": SECRET_COMMAND},
                 {"digest": "sha256:" + "0" * 64, "snapshot": str(tmp_path)}):
        status, data = _call(plane, "PUT", slot, body, token=plane.token)
        assert status == 400 and "may not name" in str(data["error"]), data
    status, data = _call(plane, "PUT", slot, {"digest": "sha256:" + "1" * 64}, token=plane.token)
    assert status == 422 and "no release of orders" in str(data["error"]), data  # only from its own store
    services = _served(plane)["dev"]
    assert isinstance(services, dict) and services["services"]["orders"]["slots"] == {}
    assert not Path("/tmp/pwned-by-plane-test").exists()


def test_the_token_and_the_plane_folder_are_private(project: Project, plane: PlaneInfo) -> None:
    state_dir = project.state_dir
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "logs").stat().st_mode) == 0o700
    token_file = state_dir / "plane.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == plane.token
    for name in ("plane.json", "plane.lock", "logs/plane.log"):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600, name
    assert _call(plane, "PUT", "/v1/envs/dev", {"port": project.port}, token=plane.token)[0] == 200
    assert stat.S_IMODE((state_dir / "plane-state.json").stat().st_mode) == 0o600  # written by the plane


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _publish(plane: PlaneInfo, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    base = {"handler": "app.handler", "memory": 128, "timeout": 3.0}
    return _call(plane, "POST", "/lambda/functions/bomb/versions", {**base, **body}, token=plane.token)


def test_lambda_packages_come_only_as_uploads_and_a_zip_bomb_is_refused(
    project: Project, plane: PlaneInfo, tmp_path: Path
) -> None:
    package = tmp_path / "app.zip"
    package.write_bytes(_zip({"app.py": b"def handler(event, context):\n    return 1\n"}))
    status, data = _publish(plane, {"zip_path": str(package)})
    assert status == 400 and "zip_path" in json.dumps(data), data

    bomb = _zip({"app.py": b"def handler(e, c):\n    return 1\n", "padding.bin": b"\0" * (64 * 1024 * 1024)})
    assert len(bomb) < 1024 * 1024
    status, data = _publish(plane, {"package": base64.b64encode(bomb).decode()})
    assert status == 400, data
    message = json.dumps(data)
    assert "zip bomb" in message and "67,108," in message  # what it would unpack to, said before unpacking
    assert not list((project.state_dir / "lambda").rglob("padding.bin"))

    good = base64.b64encode(package.read_bytes()).decode()
    status, data = _publish(plane, {"package": good})
    assert status == 200 and data["version"] == "1", data


@pytest.fixture(autouse=True)
def _no_leftover_marker() -> None:
    Path("/tmp/pwned-by-plane-test").unlink(missing_ok=True)


def test_the_state_database_and_the_registry_are_private(project: Project) -> None:
    factory = LocalFactory(load_project(project.root), SystemClock())
    env = factory.project.environment("dev")
    store, _ = factory.stores(env)
    assert store.load(ServiceRef("orders", "dev")) is None  # the database is in use
    registry = factory.registry(env)
    release = registry.resolve("orders")
    snapshot = registry.snapshot_dir(release)
    state_dir = project.state_dir
    hexdigest = release.digest.removeprefix("sha256:")
    for folder in (state_dir, state_dir / "registry", state_dir / "registry" / "orders",
                   state_dir / "releases", state_dir / "releases" / "orders", snapshot):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for file in (state_dir / "state.db", state_dir / "registry" / "orders" / f"{hexdigest}.tar",
                 state_dir / "registry" / "orders" / f"{hexdigest}.json"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
