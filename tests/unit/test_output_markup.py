"""Text that comes from data prints as it is: never read as rich markup, never as markdown.

A failing smoke check quotes the service's response body in the deployment's reason; an
actor comes from the environment; locust's request names and error messages come from the
load test. Any of them may hold ``[/x]`` (which rich reads as a closing tag and refuses
with a MarkupError, ending the command mid-rollback), ``[bold]`` (which would restyle the
line), ``|`` (a new table column in GitHub's job summary) or ``<script>``. Each test feeds
such text through a real output path and expects it back literally.
"""

from __future__ import annotations

import dataclasses
import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from pipeline.cli.loadtest import summary_table
from pipeline.cli.main import cli
from pipeline.console.render import ConsoleSink, history_table, make_console, print_error, status_table
from pipeline.core.errors import DeploymentFailed
from pipeline.core.model import StageResult
from pipeline.core.steps import TestStage
from pipeline.demo.report import SceneResult, write_report
from pipeline.engine import NullSink
from pipeline.github.release_file import ReleaseFile, body
from pipeline.loadtest import LoadResult, LoadSettings, ReportPaths, Thresholds, evaluate, read_figures
from pipeline.loadtest.report import code, markdown, md
from pipeline.loadtest.stats import EndpointFigures, FailureSample
from pipeline.local.state.sqlite_store import open_sqlite
from pipeline.markdown import link
from pipeline.operations import Context, deploy
from pipeline.testing import FakeClock, FakePlatform, release
from tests.unit.support.deployments import ORDERS
from tests.unit.support.engine import CANARY
from tests.unit.support.project import REPO_ROOT

HOSTILE = "500 from GET /health: [/x] [bold]owned[/bold] <script>alert(1)</script> | *x* _y_ `z`"
ACTOR = "[bold red]mallory[/x]"
FIXTURES = Path(__file__).parent / "test_loadtest_fixtures"


def failed_smoke_deployment(db: Path) -> None:
    """orders in dev: v1 succeeded; v2's smoke stage failed quoting a hostile response
    body, so the engine rolled back; both started by a hostile actor name."""
    clock = FakeClock()
    store, locks = open_sqlite(db, clock)
    platform = FakePlatform.create()
    ctx = Context(
        store=store,
        locks=locks,
        clock=clock,
        sink=NullSink(),
        platform_for=lambda ref: platform.ports(),
        actor=ACTOR,
        owner="mallory@host:1",
    )
    assert deploy(ctx, ORDERS, release("v1"), CANARY).phase.value == "succeeded"
    platform.stages.results["test"] = StageResult(False, HOSTILE)
    smoke_first = dataclasses.replace(CANARY, steps=(TestStage(), *CANARY.steps))
    state = deploy(ctx, ORDERS, release("v2"), smoke_first)
    assert state.phase.value == "rolled_back"
    assert HOSTILE in state.reason


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PIPELINE_LOCAL_HOME", str(tmp_path))
    failed_smoke_deployment(tmp_path / "state.db")
    yield tmp_path


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--wide"],
        ["history", "orders", "--env", "dev"],
        ["history", "orders", "--env", "dev", "--wide"],
    ],
    ids=["status", "status-wide", "history", "history-wide"],
)
def test_status_and_history_print_a_reason_and_an_actor_holding_markup_as_they_are(
    home: Path, args: list[str]
) -> None:
    result = CliRunner().invoke(
        cli, ["--root", str(REPO_ROOT), *args], env={"COLUMNS": "400"}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert HOSTILE in flat(result.stdout)
    if args[0] == "history":
        assert ACTOR in result.stdout


def sink_console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    environ = {"NO_COLOR": "1"}
    made = make_console(stderr=True, environ=environ, file=buffer, width=400, force_terminal=terminal)
    return made, buffer


@pytest.mark.parametrize("terminal", [False, True], ids=["log", "terminal"])
def test_the_rollback_after_a_failed_smoke_check_prints_the_quoted_body_as_it_is(
    tmp_path: Path, terminal: bool
) -> None:
    made, buffer = sink_console(terminal)
    clock = FakeClock()
    store, locks = open_sqlite(tmp_path / "state.db", clock)
    platform = FakePlatform.create()
    ctx = Context(
        store=store,
        locks=locks,
        clock=clock,
        sink=ConsoleSink(made, interval=1, live=terminal),
        platform_for=lambda ref: platform.ports(),
        actor=ACTOR,
        owner="mallory@host:1",
    )
    deploy(ctx, ORDERS, release("v1"), CANARY)
    platform.stages.results["test"] = StageResult(False, HOSTILE)
    smoke_first = dataclasses.replace(CANARY, steps=(TestStage(), *CANARY.steps))
    state = deploy(ctx, ORDERS, release("v2"), smoke_first)
    assert state.phase.value == "rolled_back"
    assert f"rolled_back: test stage failed: {HOSTILE}" in buffer.getvalue()


def test_emoji_codes_in_data_stay_text() -> None:
    made, buffer = sink_console(False)
    made.print("alarm :warning: fired :x:")
    assert buffer.getvalue() == "alarm :warning: fired :x:\n"


def test_an_error_quoting_data_prints_as_it_is() -> None:
    made, buffer = sink_console(False)
    print_error(DeploymentFailed(f"deployment failed: {HOSTILE}", hint=f"look at {ACTOR}"), made)
    expected = [f"error: deployment failed: {HOSTILE}", f"  hint: look at {ACTOR}"]
    assert buffer.getvalue().splitlines() == expected


def test_tables_keep_data_literal_even_on_a_console_that_reads_markup(home: Path) -> None:
    """``--wide`` tables hold ``Text`` cells: a console made elsewhere (markup on) cannot
    misread them either."""
    store, _ = open_sqlite(home / "state.db", FakeClock())
    state = store.load(ORDERS)
    assert state is not None
    buffer = io.StringIO()
    reads_markup = Console(file=buffer, width=1000, markup=True, color_system=None)
    reads_markup.print(status_table([state]))
    reads_markup.print(history_table(store.history(ORDERS)))
    assert HOSTILE in buffer.getvalue()
    assert ACTOR in buffer.getvalue()


# --- GitHub job summary (markdown) and HTML report -----------------------------------


def hostile_result(tmp_path: Path) -> LoadResult:
    limits = Thresholds(fail_ratio=0.01, p95_ms=300, min_rps=10)
    settings = LoadSettings(Path("loadtests/orders.py"), users=3, spawn_rate=3, duration=2, thresholds=limits)
    figures = read_figures(FIXTURES / "orders_single.json")
    figures = dataclasses.replace(
        figures,
        endpoints=(
            EndpointFigures("GET", "/items?a=1|b=*2*", 5, 5, 12.0),
            EndpointFigures("POST", "<img src=x onerror=alert(1)>", 1, 0, 3.0),
        ),
    )
    return LoadResult(
        service="orders",
        environment="staging",
        target="http://127.0.0.1:8200/`x`",
        settings=settings,
        workers=0,
        figures=figures,
        checks=evaluate(figures, limits),
        reports=ReportPaths(tmp_path / "run"),
        failure_samples=(FailureSample("GET", "/items|x", "HTTPError('500: `boom` | [x](y)\nnext')", 5),),
    )


def cells(row: str) -> list[str]:
    """The cells of a GFM table row: split on pipes that no backslash escapes."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_the_job_summary_escapes_request_names_and_error_messages(tmp_path: Path) -> None:
    text = markdown(hostile_result(tmp_path))
    rows = [line for line in text.splitlines() if line.startswith("| GET") or line.startswith("| POST")]
    assert len(rows) == 2
    assert all(len(cells(row)) == 4 for row in rows), rows  # no extra column
    assert r"GET /items?a=1\|b=\*2\*" in rows[0]
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in rows[1]
    sample = next(line for line in text.splitlines() if line.startswith("- GET"))
    assert sample == r"- GET /items\|x: HTTPError('500: \`boom\` \| \[x\](y) next') (5x)"
    assert "Target `` http://127.0.0.1:8200/`x` `` ·" in text  # the fence outlasts the backticks


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a|b", r"a\|b"),
        ("*bold* _it_ ~s~", r"\*bold\* \_it\_ \~s\~"),
        ("![i](u) [l](u)", r"\!\[i\](u) \[l\](u)"),
        ("<script>&amp;", "&lt;script&gt;&amp;amp;"),
        ("# heading", r"\# heading"),
        ("- item", r"\- item"),
        ("two\nlines", "two lines"),
        ("back\\slash `code`", r"back\\slash \`code\`"),
    ],
)
def test_md_makes_every_markdown_construct_literal(text: str, escaped: str) -> None:
    assert md(text) == escaped


def test_code_spans_outlast_the_backticks_inside() -> None:
    assert code("plain") == "`plain`"
    assert code("a `b` c") == "``a `b` c``"
    assert code("`x`") == "`` `x` ``"


def test_the_rich_gate_table_shows_the_service_as_it_is(tmp_path: Path) -> None:
    result = dataclasses.replace(hostile_result(tmp_path), service="[/x]orders")
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(summary_table(result))
    assert "load test of [/x]orders @ staging: " in buffer.getvalue()


def test_the_demo_report_escapes_scene_details(tmp_path: Path) -> None:
    scene = SceneResult("rollback", "failed", "rolled_back", HOSTILE, 1.0)
    page = write_report(tmp_path / "report.html", [scene], []).read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_no_module_writes_rich_markup_in_a_string() -> None:
    """The consoles do not read markup, so a ``[green]...[/]`` literal would print its
    brackets: styles are ``Text`` objects (``render.styled``) instead. Docstrings may name
    markup between double backticks."""
    style = r"(bold|dim|italic|underline|green|red|yellow|blue|cyan|magenta)"
    tag = re.compile(rf"\[/\]|\[/?{style}( {style})*\]")
    offenders = []
    for path in sorted((REPO_ROOT / "pipeline").rglob("*.py")):
        with path.open("rb") as handle:
            for token in tokenize.tokenize(handle.readline):
                if token.type != tokenize.STRING and token.type != getattr(tokenize, "FSTRING_MIDDLE", -1):
                    continue
                if tag.search(re.sub(r"``[^`]*``", "", token.string)):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{token.start[0]}")
    assert offenders == []


# --- the promotion pull request (what Ops reviewers approve on) ---------------------------


def test_a_release_file_cannot_add_structure_to_the_promotion_pull_request() -> None:
    """The release file comes from a Dev repository's handoff; its values must not forge
    table rows, bold claims, links or HTML on the page an Ops reviewer approves."""
    forged = ReleaseFile(
        service="orders",
        digest="sha256:" + "ab" * 32,
        version="v2` | **approved by Ops** |\n| x",
        commit="0123456789abcdef0123456789abcdef01234567",
        image="",
        source_repo="shop/shop",
        source_environment="staging** <img src=x onerror=alert(1)>",
        deployment="d-1`[click](https://evil.example)`",
        evidence=(("[ok](https://evil.example)", "javascript:alert(1)"), ("load test", "https://ci.example/7")),
    )
    text = body(None, forged, base="main", server_url="https://github.com")

    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert all(len(cells(row)) == 3 for row in rows), rows
    # the forged claim stays inside code spans (literal), fenced beyond its backticks
    assert "to production: ``v2` | **approved by Ops** | | x``" in text
    assert "| version | — | ``v2` \\| **approved by Ops** \\| \\| x`` |" in text
    assert "passed **staging\\*\\* &lt;img" in text
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "](javascript:" not in text and "\\[ok\\](https://evil.example): javascript:alert(1)" in text
    assert "- [load test](https://ci.example/7)" in text


@pytest.mark.parametrize(
    ("name", "url", "shown"),
    [
        ("load test", "https://ci.example/runs/7", "[load test](https://ci.example/runs/7)"),
        ("x", "javascript:alert(1)", "x: javascript:alert(1)"),
        ("x", "https://a.example/b) [y](https://evil", "x: https://a.example/b) \\[y\\](https://evil"),
        ("*bold*", "https://a.example", "[\\*bold\\*](https://a.example)"),
    ],
)
def test_links_only_to_plain_http_urls(name: str, url: str, shown: str) -> None:
    assert link(name, url) == shown
