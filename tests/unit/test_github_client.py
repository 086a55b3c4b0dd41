"""The GitHub REST client against the fake over real HTTP: base URL, headers, pages,
retries of transient failures, and the 401/403/404 errors a user sees (exit code and
message, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pipeline.core.errors import PlatformError, TransientPlatformError, UsageError
from pipeline.github.http import DEFAULT_API_URL, GitHubHttp, GitHubSettings
from pipeline.github.models import RepoName
from pipeline.github.rest import GitHubApi
from tests.support.fake_github import FakeGitHub, running
from tests.unit.support.github import DEV_REPO, OPS_REPO

REPO = RepoName.parse(OPS_REPO)


def client(fake: FakeGitHub, token: str = "t", sleeps: list[float] | None = None) -> GitHubHttp:
    record = sleeps if sleeps is not None else []
    return GitHubHttp(GitHubSettings(api_url=fake.url, token=token), sleep=record.append)


@pytest.fixture
def github(fake_github: FakeGitHub) -> FakeGitHub:
    fake_github.token("t", "ops-gate[bot]")
    fake_github.repo(OPS_REPO)
    return fake_github


def test_settings_come_from_github_api_url_and_the_named_token_variable() -> None:
    env = {"GITHUB_API_URL": "https://ghe.example/api/v3/", "OPS_TOKEN": "abc"}
    settings = GitHubSettings.from_env("OPS_TOKEN", env)
    assert settings.api_url == "https://ghe.example/api/v3" and settings.token == "abc"
    assert GitHubSettings.from_env("GITHUB_TOKEN", {"GITHUB_TOKEN": "x"}).api_url == DEFAULT_API_URL == (
        "https://api.github.com"
    )
    with pytest.raises(UsageError, match=r"no GitHub token: \$OPS_TOKEN is empty or not set"):
        GitHubSettings.from_env("OPS_TOKEN", {"GITHUB_TOKEN": "x"})


def test_an_enterprise_server_base_path_is_kept_and_every_request_carries_githubs_headers() -> None:
    with running(prefix="/api/v3") as fake:
        fake.token("t", "bot")
        fake.repo(OPS_REPO)
        assert fake.url.endswith("/api/v3")
        with client(fake) as http:
            assert GitHubApi.over(http).contents.branch_sha(REPO, "main") is not None
        [request] = fake.requests
        assert request["path"] == f"/repos/{OPS_REPO}/git/ref/heads/main"
        assert request["accept"] == "application/vnd.github+json"
        assert request["api_version"] == "2022-11-28" and request["auth"] is True


def test_lists_follow_the_link_header_across_pages(github: FakeGitHub) -> None:
    github.push(OPS_REPO, "main", {"a.txt": "a"})
    sha = github.state["repos"][OPS_REPO]["branches"]["main"]
    github.state["repos"][OPS_REPO]["branches"]["feature"] = sha
    github.push(OPS_REPO, "feature", {"b.txt": "b"})
    with client(github) as http:
        pull = GitHubApi.over(http).pulls.create(REPO, "feature", "main", "t", "b")
        for n in range(130):
            github.review(OPS_REPO, pull.number, f"user{n}", "COMMENTED")
        reviews = GitHubApi.over(http).approvals.reviews(REPO, pull.number)
    assert [r.reviewer for r in reviews] == [f"user{n}" for n in range(130)]
    pages = [r for r in github.requests if r["path"].endswith("/reviews")]
    assert [r["query"].get("page", "1") for r in pages] == ["1", "2"]


def test_retries_server_errors_and_secondary_rate_limits(github: FakeGitHub) -> None:
    github.fault(r"/git/ref/", 502, times=2)
    github.fault(r"/git/ref/", 403, retry_after=3, message="You have exceeded a secondary rate limit")
    sleeps: list[float] = []
    with client(github, sleeps=sleeps) as http:
        assert GitHubApi.over(http).contents.branch_sha(REPO, "main")
    assert len([r for r in github.requests if "/git/ref/" in r["path"]]) == 4
    assert sleeps[-1] == 3.0  # as Retry-After said
    assert len(sleeps) == 3


def test_a_post_that_failed_on_the_server_is_not_repeated(github: FakeGitHub) -> None:
    github.fault(r"/deployments$", 502, method="POST")
    with client(github) as http, pytest.raises(TransientPlatformError, match="GitHub answered 502"):
        GitHubApi.over(http).deployments.create(REPO, "0" * 40, "prod", {}, "")
    assert len([r for r in github.requests if r["method"] == "POST"]) == 1


def test_gives_up_after_the_configured_attempts(github: FakeGitHub) -> None:
    github.fault(r"/git/ref/", 503, times=10)
    with client(github) as http, pytest.raises(TransientPlatformError, match="GitHub answered 503"):
        GitHubApi.over(http).contents.branch_sha(REPO, "main")
    assert len([r for r in github.requests if "/git/ref/" in r["path"]]) == 4


def test_membership_answers_204_404_and_refuses_to_guess_on_302(github: FakeGitHub) -> None:
    github.member("shop-ops", "carol", teams=["production"])
    github.member("shop-ops", "erin", teams=["production"], team_state="pending")
    github.token("outside", "someone", outsider=True)
    with client(github) as http:
        approvals = GitHubApi.over(http).approvals
        assert approvals.is_member("shop-ops", "carol", None) is True
        assert approvals.is_member("shop-ops", "carol", "production") is True
        assert approvals.is_member("shop-ops", "erin", "production") is False  # invitation pending
        assert approvals.is_member("shop-ops", "mallory", None) is False
    with client(github, token="outside") as http, pytest.raises(PlatformError, match="answered 302"):
        GitHubApi.over(http).approvals.is_member("shop-ops", "carol", None)


# --- what the user sees ------------------------------------------------------------


def status_command(fake: FakeGitHub, token: str, api_url: str = "") -> subprocess.CompletedProcess[str]:
    """``pipeline deployment-status`` as a separate process, as in a workflow step."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", "deployment-status", "--repo", DEV_REPO,
         "--commit", "a" * 40, "--env", "prod", "--state", "success", "--json"],
        env={"PATH": "/usr/bin:/bin", "GITHUB_API_URL": api_url or fake.url, "GITHUB_TOKEN": token,
             "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_the_cli_reaches_github_through_github_api_url_and_its_path() -> None:
    with running(prefix="/api/v3") as fake:
        fake.token("t", "bot")
        fake.repo(DEV_REPO)
        fake.push(DEV_REPO, "main", {"x": "x"})
        commit = fake.state["repos"][DEV_REPO]["branches"]["main"]
        assert status_command(fake, "t", api_url=fake.web_url).returncode == 3  # the path matters
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline.cli.main", "deployment-status", "--repo", DEV_REPO,
             "--commit", commit, "--env", "prod", "--state", "success", "--json"],
            env={"PATH": "/usr/bin:/bin", "GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "t"},
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["state"] == "success"
        assert fake.requests[-1]["path"].startswith(f"/repos/{DEV_REPO}/deployments/")


def test_a_refused_token_says_it_may_have_expired(fake_github: FakeGitHub) -> None:
    fake_github.repo(DEV_REPO)
    proc = status_command(fake_github, "expired-token")
    assert proc.returncode == 7 and proc.stdout == ""
    assert "GitHub answered 401" in proc.stderr and "Bad credentials" in proc.stderr
    assert "installation tokens last one hour" in proc.stderr and "Traceback" not in proc.stderr


def test_a_missing_permission_names_the_permission_the_app_needs(fake_github: FakeGitHub) -> None:
    fake_github.repo(DEV_REPO)
    fake_github.token("read-only", "bot", permissions={"contents": "read", "deployments": "read"})
    proc = status_command(fake_github, "read-only")
    assert proc.returncode == 7
    assert "GitHub answered 403 to POST /repos/shop/shop/deployments" in proc.stderr
    assert "'Deployments: write' permission" in proc.stderr and "Traceback" not in proc.stderr


def test_a_repository_the_token_cannot_see_is_not_found(fake_github: FakeGitHub) -> None:
    fake_github.repo(DEV_REPO)
    fake_github.token("elsewhere", "bot", repos=["shop/other"])
    proc = status_command(fake_github, "elsewhere")
    assert proc.returncode == 3
    assert "not found" in proc.stderr and "install the GitHub App on it" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_token_at_all_is_a_usage_error(fake_github: FakeGitHub) -> None:
    proc = status_command(fake_github, "")
    assert proc.returncode == 2 and "no GitHub token: $GITHUB_TOKEN is empty or not set" in proc.stderr
    assert fake_github.requests == []


def test_the_fake_runs_as_a_command_and_keeps_its_state_in_a_file(tmp_path: Path) -> None:
    state = tmp_path / "github.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_github", "--port", "0", "--state", str(state)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.post(f"{url}/_fake/repos", json={"full_name": OPS_REPO}).status_code == 201
        assert httpx.get(f"{url}/repos/{OPS_REPO}").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    saved = json.loads(state.read_text())
    assert OPS_REPO in saved["repos"] and saved["requests"][-1]["path"] == f"/repos/{OPS_REPO}"


@pytest.mark.parametrize(
    "text", ['shop/x"; curl https://evil.example #', "https://github.com/shop/shop", "shop", "shop/.."]
)
def test_a_repository_must_be_owner_slash_name(text: str) -> None:
    with pytest.raises(UsageError, match="is not a GitHub repository: expected OWNER/REPO"):
        RepoName.parse(text)
    assert str(RepoName.parse("shop-ops/deploy.ments_1")) == "shop-ops/deploy.ments_1"
