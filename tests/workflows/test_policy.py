"""The security rules of every workflow and composite action (Dev ``.github`` and the Ops
template ``ops/.github``), and that names in the workflows match the projects.

Rules: top-level ``permissions: {}`` and per-job grants; every third-party action pinned to
a 40-hex commit with its ``# vX.Y.Z``; checkout without persisted credentials; no ``${{ }}``
inside ``run:``; no ``pull_request_target``/``workflow_run``/``secrets: inherit``; secrets
only in jobs bound to an environment; OIDC (``id-token: write``) only where AWS is called,
through the environment's ``vars.AWS_ROLE_ARN``; deploy concurrency per service and
environment, literal, never cancelling.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workflows.support.files import (
    OPS_ROOT,
    PIN,
    REPO_ROOT,
    VERSION_COMMENT,
    WorkflowFile,
    all_files,
    project_environments,
    run_scripts,
    service_names,
    unquoted_expansions,
    workflow,
    workflows,
)

FILES = all_files()
WORKFLOWS = workflows()
AWS_ACTION = "aws-actions/configure-aws-credentials"
DEPLOYING = re.compile(r"\bpipeline\b.*\b(deploy|promote|rollback)\b")
# GitHub environments that are not pipeline environments: the handoff job's App key.
EXTRA_ENVIRONMENTS = {"dev": {"handoff"}, "ops": set()}


def ids(files: Any) -> list[str]:
    return [f.name for f in files]


def test_there_are_dev_and_ops_workflows_to_check() -> None:
    names = {f.name for f in FILES}
    assert {
        ".github/workflows/ci.yml", ".github/workflows/deliver.yml", ".github/workflows/service.yml",
        ".github/workflows/operate.yml", ".github/actions/setup-pipeline/action.yml",
        "ops/.github/workflows/promote.yml", "ops/.github/workflows/rollback.yml",
    } <= names


@pytest.mark.parametrize("file", WORKFLOWS, ids=ids(WORKFLOWS))
def test_workflow_grants_nothing_at_the_top_and_each_job_its_own(file: WorkflowFile) -> None:
    assert file.data.get("permissions") == {}, f"{file.name}: top-level permissions must be {{}}"
    for job_id, job in file.jobs().items():
        assert "permissions" in job, f"{file.name}: job {job_id} must declare its permissions"


@pytest.mark.parametrize("file", FILES, ids=ids(FILES))
def test_every_action_is_pinned_to_a_commit_with_its_version(file: WorkflowFile) -> None:
    for uses, line in file.uses_lines():
        if uses.startswith("./"):
            continue
        assert PIN.match(uses), f"{file.name}: {uses} is not pinned to a 40-hex commit"
        assert VERSION_COMMENT.search(line), f"{file.name}: {uses} needs a '# vX.Y.Z' comment"


def test_one_action_is_pinned_to_the_same_commit_everywhere() -> None:
    pins: dict[str, set[str]] = {}
    for file in FILES:
        for uses, line in file.uses_lines():
            if not uses.startswith("./"):
                action, _, sha = uses.partition("@")
                pins.setdefault(action, set()).add(f"{sha} {line.split('#')[-1].strip()}")
    assert pins, "no pinned action found"
    assert {action: shas for action, shas in pins.items() if len(shas) > 1} == {}


@pytest.mark.parametrize("file", FILES, ids=ids(FILES))
def test_checkout_never_persists_credentials(file: WorkflowFile) -> None:
    for job_id, step in file.steps():
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, (
                f"{file.name}: job {job_id}: checkout needs persist-credentials: false"
            )


@pytest.mark.parametrize("file", FILES, ids=ids(FILES))
def test_no_expression_inside_a_run_script(file: WorkflowFile) -> None:
    for job_id, step in file.steps():
        assert "${{" not in str(step.get("run", "")), (
            f"{file.name}: job {job_id}: pass values to run: through env:, not ${{{{ }}}}"
        )


@pytest.mark.parametrize("file", WORKFLOWS, ids=ids(WORKFLOWS))
def test_no_privileged_triggers_and_no_inherited_secrets(file: WorkflowFile) -> None:
    assert not {"pull_request_target", "workflow_run"} & set(file.triggers()), file.name
    for job_id, job in file.jobs().items():
        assert job.get("secrets") != "inherit", f"{file.name}: job {job_id} uses secrets: inherit"


@pytest.mark.parametrize("file", WORKFLOWS, ids=ids(WORKFLOWS))
def test_secrets_are_read_only_in_jobs_bound_to_an_environment(file: WorkflowFile) -> None:
    for job_id, job in file.jobs().items():
        if "secrets." in _dump(job.get("steps", [])):
            assert job.get("environment"), f"{file.name}: job {job_id} reads secrets outside an environment"


@pytest.mark.parametrize("file", WORKFLOWS, ids=ids(WORKFLOWS))
def test_oidc_is_granted_only_to_jobs_that_call_aws(file: WorkflowFile) -> None:
    for job_id, job in file.jobs().items():
        renews = "AWS_ROLE_ARN" in (job.get("env") or {})  # pipeline's own renewing OIDC credentials
        if renews:
            assert job["env"]["AWS_ROLE_ARN"] == "${{ vars.AWS_ROLE_ARN }}", f"{file.name}: {job_id}"
            assert AWS_ACTION not in _dump(job.get("steps", [])), f"{file.name}: {job_id}: one source"
        calls_aws = AWS_ACTION in _dump(job.get("steps", [])) or "uses" in job or renews
        grants = (job.get("permissions") or {}).get("id-token") == "write"
        assert grants == calls_aws, f"{file.name}: job {job_id}: id-token: write iff it calls AWS"
        for step in job.get("steps", []) or []:
            if str(step.get("uses", "")).startswith(AWS_ACTION):
                assert step.get("if") == "vars.AWS_ROLE_ARN != ''", f"{file.name}: {job_id}"
                assert step["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}", f"{file.name}: {job_id}"


DEPLOYING_JOBS = {
    "service.yml": ("dev", "staging", "load"),
    "operate.yml": ("operate",),
    "promote-single-org.yml": ("promote",),
    "promote.yml": ("promote",),
    "rollback.yml": ("rollback",),
}


@pytest.mark.parametrize("file", WORKFLOWS, ids=ids(WORKFLOWS))
def test_jobs_that_can_outlast_an_hour_renew_their_aws_credentials(file: WorkflowFile) -> None:
    """configure-aws-credentials leaves fixed keys (an hour); a deployment can hold far longer,
    and pipeline refuses a strategy its credentials cannot outlast."""
    jobs = file.jobs()
    for job_id in DEPLOYING_JOBS.get(file.name, ()):
        env = jobs[job_id].get("env") or {}
        assert env.get("AWS_ROLE_ARN") == "${{ vars.AWS_ROLE_ARN }}", f"{file.name}: {job_id}"
        assert env.get("AWS_REGION") == "${{ vars.AWS_REGION }}", f"{file.name}: {job_id}"
        assert AWS_ACTION not in _dump(jobs[job_id].get("steps", [])), f"{file.name}: {job_id}"


@pytest.mark.parametrize("file", WORKFLOWS, ids=ids(WORKFLOWS))
def test_deploying_jobs_queue_per_service_and_environment_and_never_cancel(file: WorkflowFile) -> None:
    for job_id, job in file.jobs().items():
        group = (job.get("concurrency") or {}).get("group", "")
        if DEPLOYING.search(_dump(job.get("steps", []))):
            assert job.get("concurrency"), f"{file.name}: job {job_id} deploys without a concurrency group"
        if job.get("concurrency"):
            assert job["concurrency"].get("cancel-in-progress") is False, f"{file.name}: {job_id}"
            assert "github.workflow" not in group, f"{file.name}: {job_id}: use a literal group name"
            assert re.match(r"^(deploy|operate)-", group), f"{file.name}: {job_id}: start with literal text"


def test_deploy_groups_name_the_service_and_the_environment() -> None:
    jobs = workflow("dev", "service.yml").jobs()
    assert jobs["dev"]["concurrency"]["group"] == "deploy-${{ inputs.service }}-dev"
    assert jobs["staging"]["concurrency"]["group"] == "deploy-${{ inputs.service }}-staging"
    operate = workflow("dev", "operate.yml").jobs()["operate"]["concurrency"]["group"]
    assert operate.startswith("operate-") and "inputs.service" in operate and "inputs.environment" in operate


@pytest.mark.parametrize("side", ["dev", "ops"])
def test_environment_names_are_pipeline_environments(side: str) -> None:
    known = set(project_environments(side)) | EXTRA_ENVIRONMENTS[side]
    seen: set[str] = set()
    for file in workflows(side):
        for job_id, job in file.jobs().items():
            env = job.get("environment")
            if env is None:
                continue
            name = env["name"] if isinstance(env, dict) else env
            if name == "${{ inputs.environment }}":
                choices = file.triggers()["workflow_dispatch"]["inputs"]["environment"]["options"]
                seen |= set(choices)
                assert set(choices) <= known, f"{file.name}: environment choices {choices}"
            else:
                seen.add(name)
                assert name in known, f"{file.name}: job {job_id}: environment {name!r} not in pipeline.yaml"
    assert seen, f"no environment in the {side} workflows"


def test_operate_offers_exactly_the_dev_organisations_environments() -> None:
    inputs = workflow("dev", "operate.yml").triggers()["workflow_dispatch"]["inputs"]
    owned_by_dev = sorted(n for n, e in project_environments("dev").items()
                          if e.get("owner") == "dev" and e.get("platform") == "local")
    assert sorted(inputs["environment"]["options"]) == owned_by_dev
    assert sorted(inputs["action"]["options"]) == ["abort", "continue", "rollback"]


@pytest.mark.parametrize(("side", "name"), [("dev", "operate.yml"), ("ops", "rollback.yml")])
def test_service_choices_are_the_services_of_the_repository(side: str, name: str) -> None:
    inputs = workflow(side, name).triggers()["workflow_dispatch"]["inputs"]
    assert inputs["service"]["type"] == "choice"
    assert sorted(inputs["service"]["options"]) == service_names()


def test_ops_promotes_only_into_writable_production_and_reads_staging() -> None:
    envs = project_environments("ops")
    assert envs["staging"].get("access") == "read"
    for file in workflows("ops"):
        for job in file.jobs().values():
            assert job.get("environment") == "prod", file.name
            assert "access" not in envs["prod"]


def test_every_run_script_quotes_its_variables() -> None:
    checked = 0
    for file, job_id, script in run_scripts():
        checked += 1
        assert unquoted_expansions(script) == [], f"{file.name}: job {job_id}: quote these in: {script}"
    assert checked >= 20


def test_the_quoting_check_finds_an_unquoted_variable() -> None:
    assert unquoted_expansions('pipeline test $SERVICE # "$X"') == ["$SERVICE"]
    assert unquoted_expansions("echo \"a=$A\" '$B' \\$C") == []


def _dump(value: object) -> str:
    return repr(value)


def test_every_stage_of_the_service_chain_says_why_it_stopped() -> None:
    for job_id, job in workflow("dev", "service.yml").jobs().items():
        last = job["steps"][-1]
        assert last.get("if") == "failure()", f"service.yml: job {job_id} ends without a failure summary"
        assert "GITHUB_STEP_SUMMARY" in last["run"], f"service.yml: job {job_id}"


def test_the_chain_runs_its_stages_in_order() -> None:
    jobs = workflow("dev", "service.yml").jobs()
    order = ["test", "push", "dev", "staging", "load", "handoff"]
    assert list(jobs) == order
    for before, job_id in itertools.pairwise(order):
        needs = jobs[job_id]["needs"]
        assert before in ([needs] if isinstance(needs, str) else needs), f"{job_id} must need {before}"


def test_deliver_runs_one_chain_per_changed_service_without_fail_fast() -> None:
    job = workflow("dev", "deliver.yml").jobs()["service"]
    assert job["uses"] == "./.github/workflows/service.yml"
    assert job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"]["service"] == "${{ fromJSON(needs.changes.outputs.services) }}"


def test_ci_runs_the_readme_test_command_and_validate() -> None:
    runs = [str(step.get("run", "")) for _, step in workflow("dev", "ci.yml").steps()]
    assert "bash scripts/test.sh" in runs
    assert "pipeline validate" in runs
    assert "bash scripts/test.sh" in (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_ops_team_owns_the_releases_and_the_workflows() -> None:
    owners = dict(
        line.split(maxsplit=1) for line in (OPS_ROOT / ".github" / "CODEOWNERS").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert set(owners) >= {"/releases/", "/.github/"}
    assert all(re.fullmatch(r"@[\w-]+/[\w-]+", team.strip()) for team in owners.values()), owners


BAD_WORKFLOW = """\
on: push
jobs:
  j:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - run: echo ${{ github.sha }}
"""


@pytest.mark.parametrize(
    "rule",
    [
        test_workflow_grants_nothing_at_the_top_and_each_job_its_own,
        test_every_action_is_pinned_to_a_commit_with_its_version,
        test_checkout_never_persists_credentials,
        test_no_expression_inside_a_run_script,
    ],
    ids=lambda rule: rule.__name__.removeprefix("test_"),
)
def test_the_rules_reject_a_workflow_that_breaks_them(rule: Any) -> None:
    bad = WorkflowFile(path=REPO_ROOT / ".github/workflows/bad.yml", text=BAD_WORKFLOW,
                       data=yaml.safe_load(BAD_WORKFLOW), side="dev")
    with pytest.raises(AssertionError):
        rule(bad)


@pytest.mark.parametrize("project", [None, OPS_ROOT / "pipeline.yaml"], ids=["dev", "ops"])
def test_the_project_files_the_workflows_use_are_valid(project: Path | None) -> None:
    from click.testing import CliRunner

    from pipeline.cli.main import cli

    head = ["--root", str(REPO_ROOT)] + (["--project", str(project)] if project else [])
    result = CliRunner().invoke(cli, [*head, "validate", "--json"])
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    assert "orders" in result.output
