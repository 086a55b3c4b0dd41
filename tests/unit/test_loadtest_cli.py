"""``pipeline loadtest`` without running locust: settings, overrides, targets, user errors,
on the project of ``tests.support.loadtest_project``."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline.cli.loadtest import resolve_settings, router_url
from pipeline.cli.main import main
from pipeline.config import load_project
from pipeline.core.errors import UsageError
from pipeline.loadtest import Thresholds
from tests.support.loadtest_project import write_project


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"))


def test_settings_come_from_the_load_section(project_root: Path) -> None:
    settings = resolve_settings(load_project(project_root).service("orders"), {})
    assert (settings.users, settings.spawn_rate, settings.duration) == (4, 4.0, 3.0)
    assert settings.user_class == "OrdersUser" and settings.locustfile == Path("loadtests/orders.py")
    assert settings.thresholds == Thresholds(fail_ratio=0.01, p95_ms=500.0)


def test_command_line_overrides_win_and_keep_the_rest(project_root: Path) -> None:
    overrides = {"users": 7, "duration": "1m", "min_rps": 25.0, "p95_ms": None, "locustfile": Path("x.py")}
    settings = resolve_settings(load_project(project_root).service("orders"), overrides)
    assert (settings.users, settings.duration, settings.spawn_rate) == (7, 60.0, 4.0)
    assert settings.thresholds == Thresholds(fail_ratio=0.01, p95_ms=500.0, min_rps=25.0)
    assert settings.locustfile == Path("x.py")
    assert resolve_settings(load_project(project_root).service("orders"), {"duration": "12"}).duration == 12.0


def test_a_service_without_load_section_needs_a_locustfile(project_root: Path) -> None:
    bare = load_project(project_root).service("bare")
    with pytest.raises(UsageError, match="bare has no load test") as exc:
        resolve_settings(bare, {})
    assert "--locustfile" in exc.value.hint
    assert resolve_settings(bare, {"locustfile": Path("l.py")}).users == 10


def test_bad_duration_is_a_usage_error(project_root: Path) -> None:
    with pytest.raises(UsageError, match="invalid --duration 'soon'"):
        resolve_settings(load_project(project_root).service("orders"), {"duration": "soon"})
    with pytest.raises(UsageError, match="at least 1 second"):
        resolve_settings(load_project(project_root).service("orders"), {"duration": "0.5"})


def test_target_defaults_to_the_environment_router(project_root: Path) -> None:
    project = load_project(project_root)
    assert router_url(project.environment("dev"), "dev") == "http://127.0.0.1:8100"
    with pytest.raises(UsageError, match="no URL to load for cloud") as exc:
        router_url(project.environment("cloud"), "cloud")
    assert "--target" in exc.value.hint


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["loadtest", "nosuch", "--env", "dev"], 3, "unknown service 'nosuch'"),
        (["loadtest", "orders", "--env", "nowhere"], 3, "unknown environment 'nowhere'"),
        (["loadtest", "bare", "--env", "dev"], 2, "bare has no load test"),
        (["loadtest", "orders", "--env", "dev", "--target", "ftp://x"], 2, "must be a base URL"),
    ],
)
def test_user_mistakes_exit_with_a_message_and_no_traceback(
    project_root: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    assert main(["--root", str(project_root), *args]) == code
    stderr = capsys.readouterr().err
    assert message in stderr and "Traceback" not in stderr


def test_an_unreachable_router_is_reported_before_locust_starts(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # bound, not listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        assert main(["--root", str(project_root), "loadtest", "orders", "--env", "dev", "--target", url]) == 7
    stderr = capsys.readouterr().err
    assert f"nothing answers at {url} (the target)" in stderr and "pipeline local up" in stderr
    assert not (project_root / "reports").exists()
