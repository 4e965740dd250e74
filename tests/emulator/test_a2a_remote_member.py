"""A remote A2A agent as a lobby member, against a real A2A server (a2a-sdk's server classes)
on loopback: registered with `agentlobby agents add-remote`, served by the stack's `remote`
function, with the pipeline's guarantees: one call per lobby message however often it is
delivered, tries again on a failing remote, a dead letter naming it when it keeps failing."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from agentlobby.a2a_remote.parts import a2a_message_id
from agentlobby.store.conversations import Conversations
from agentlobby.store.registry import Registry
from local_emulator.stack import Stack, free_port
from local_emulator.stack_state import StackInfo
from tests.support.a2a_server import RemoteState, a2a_server
from tests.support.cli import cli_ok, run_cli
from tests.support.envelopes import reply_to, stored_user_message
from tests.support.lobbies import create_lobby_with, recording, settings_for
from tests.support.pubsub import envelope_push, post_push, topic_url
from tests.support.user import JsonUser
from tests.support.waiting import wait_for

DEAD_LETTER_WAIT_S = 200.0  # 5 attempts with backoff, or the sweeper's redrives on the emulator


def new_agent_name() -> str:
    return f"remote_{secrets.token_hex(3)}"


def add_remote(cli_env: dict[str, str], name: str, url: str, lobby: str) -> str:
    return cli_ok(cli_env, "agents", "add-remote", name, "--a2a", url, "--lobby", lobby)


def replies_from(user: JsonUser, cid: str, sender: str) -> list[dict[str, Any]]:
    return [m for m in user.conversation(cid)["messages"] if m["sender"] == sender]


def executions(state: RemoteState, agent: str, message_id: str) -> int:
    return state.executions[a2a_message_id(agent, message_id)]


def test_a_remote_agent_answers_in_the_lobby_once_however_often_it_is_delivered(
    stack: Stack, info: StackInfo, user: JsonUser, cli_env: dict[str, str], lobby_name: str
) -> None:
    create_lobby_with(settings_for(info), lobby_name)
    with a2a_server() as (url, remote):
        said = add_remote(cli_env, "shouter", url, lobby_name)
        assert said.strip() == (
            f"agent shouter forwards to the A2A agent at {url}; member of {lobby_name}"
        )
        listed = cli_ok(cli_env, "agents")
        assert any(
            line.split()[:2] == ["shouter", lobby_name] and line.endswith(f"A2A {url}")
            for line in listed.splitlines()
        ), listed
        posted = user.post(lobby_name, "hello remote")
        cid, mid = posted["conversation_id"], posted["message_id"]
        (reply,) = wait_for(lambda: replies_from(user, cid, "shouter"), timeout_s=30)
        assert reply["text"] == "HELLO REMOTE"
        assert reply["parent_id"] == mid
        # The remote saw a stable messageId, the conversation as its context, and where from.
        a2a_id = a2a_message_id("shouter", mid)
        assert remote.executions == {a2a_id: 1}
        assert remote.contexts[a2a_id] == cid
        assert remote.metadata[a2a_id]["agentlobby"]["lobby"] == lobby_name

        # The same message again, pushed straight to the function and answered before the
        # POST returns: acknowledged, and the remote is not called a second time.
        (envelope,) = Conversations(info.project).transcript(cid)[:1]
        endpoint = topic_url(f"{stack.url('remote')}/agents/shouter", info.project, lobby_name)
        for copy in range(2):
            assert post_push(endpoint, envelope_push(envelope, f"dup-{copy}-{cid}")) == 200
        assert executions(remote, "shouter", mid) == 1
        assert len(replies_from(user, cid, "shouter")) == 1

        # A task answered as an A2A task: its artifact is the reply.
        posted = user.post(lobby_name, "task: make it loud", conversation_id=cid)
        wait_for(lambda: len(replies_from(user, cid, "shouter")) == 2, timeout_s=30)
        assert replies_from(user, cid, "shouter")[-1]["text"] == "TASK: MAKE IT LOUD"
        # A failed A2A task is a reply that says so, not a retry.
        posted = user.post(lobby_name, "fail: please", conversation_id=cid)
        wait_for(lambda: len(replies_from(user, cid, "shouter")) == 3, timeout_s=30)
        failed = replies_from(user, cid, "shouter")[-1]["text"]
        assert failed.startswith("shouter's A2A task ") and "failed" in failed, failed
        assert failed.endswith("the remote gave up")
        assert executions(remote, "shouter", posted["message_id"]) == 1


def test_a_redelivery_after_the_answer_was_stored_republishes_it_without_calling(
    stack: Stack, info: StackInfo, cli_env: dict[str, str], lobby_name: str
) -> None:
    name = new_agent_name()
    settings = settings_for(info)
    create_lobby_with(settings, lobby_name)
    with a2a_server() as (url, remote):
        add_remote(cli_env, name, url, lobby_name)
        message = stored_user_message(settings, lobby_name, "hello again")
        # An earlier delivery got the remote's answer, stored it, and died before publishing.
        earlier = reply_to(message, name, "THE ANSWER STORED EARLIER")
        conversations = Conversations(info.project)
        conversations.record(earlier)
        endpoint = topic_url(f"{stack.url('remote')}/agents/{name}", info.project, lobby_name)
        with recording(info.project, lobby_name) as tail:
            assert post_push(endpoint, envelope_push(message, f"again-{message.id}")) == 200
            heard = tail.messages(settle_s=1.0)
        assert remote.executions == {}  # the remote is not asked a second time
    assert [m.id for m in heard] == [earlier.id]  # the stored answer is published after all
    texts = [m.text() for m in conversations.transcript(message.conversation_id)]
    assert texts == ["hello again", "THE ANSWER STORED EARLIER"]


def test_a_remote_that_fails_once_answers_after_a_retry(
    info: StackInfo, user: JsonUser, cli_env: dict[str, str], lobby_name: str
) -> None:
    name = new_agent_name()
    create_lobby_with(settings_for(info), lobby_name)
    with a2a_server() as (url, remote):
        add_remote(cli_env, name, url, lobby_name)
        remote.fail_next = 1
        posted = user.post(lobby_name, "second time lucky")
        cid = posted["conversation_id"]
        (reply,) = wait_for(lambda: replies_from(user, cid, name), timeout_s=60)
        assert reply["text"] == "SECOND TIME LUCKY"
        assert remote.refused_posts == 1
        assert executions(remote, name, posted["message_id"]) == 1
        assert user.conversation(cid)["dead_letters"] == []


def test_a_remote_that_keeps_failing_ends_in_a_dead_letter_naming_it(
    info: StackInfo, user: JsonUser, cli_env: dict[str, str], lobby_name: str
) -> None:
    name = new_agent_name()
    create_lobby_with(settings_for(info), lobby_name)
    with a2a_server() as (url, remote):
        add_remote(cli_env, name, url, lobby_name)
        cli_ok(cli_env, "agents", "set", name, "tries=2")
        remote.down = True
        posted = user.post(lobby_name, "anyone there?")
        cid = posted["conversation_id"]
        letters = wait_for(
            lambda: user.conversation(cid)["dead_letters"], timeout_s=DEAD_LETTER_WAIT_S
        )
    (letter,) = letters
    assert (letter["agent"], letter["message_id"]) == (name, posted["message_id"])
    assert (
        f"remote A2A agent {name} at {url} answered HTTP 500 (tried 2 times)" in (letter["reason"])
    ), letter["reason"]
    assert remote.executions == {}  # every try was refused before the agent ran
    assert remote.refused_posts >= 4  # two deliveries at least, each tried twice
    view = user.conversation(cid)
    assert [m["sender"] for m in view["messages"]] == ["user"]
    assert view["status"] == "open"  # a chat goes on without the member that failed


def test_a_remote_that_refuses_the_request_is_dead_lettered_at_once(
    info: StackInfo, user: JsonUser, cli_env: dict[str, str], lobby_name: str
) -> None:
    name = new_agent_name()
    create_lobby_with(settings_for(info), lobby_name)
    with a2a_server() as (url, remote):
        add_remote(cli_env, name, url, lobby_name)
        posted = user.post(lobby_name, "invalid: this")
        cid = posted["conversation_id"]
        (letter,) = wait_for(lambda: user.conversation(cid)["dead_letters"], timeout_s=30)
        assert executions(remote, name, posted["message_id"]) == 1  # not tried again
    assert letter["agent"] == name
    assert letter["reason"].startswith(f"remote A2A agent {name} at {url} refused the request: "), (
        letter["reason"]
    )
    assert "cannot take 'invalid: this'" in letter["reason"]


def test_a_remote_that_is_down_is_unavailable_not_refused() -> None:
    from agentlobby.a2a_remote.call import RemoteCall, ask
    from agentlobby.a2a_remote.parts import outgoing_message
    from agentlobby.errors import RemoteAgentUnavailable
    from tests.support.envelopes import user_message

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    call = RemoteCall(agent="gone", url=closed, timeout_s=5, tries=1)
    message = outgoing_message("gone", user_message("t-lobby", "hello"), "hello")
    with pytest.raises(RemoteAgentUnavailable, match=r"could not be reached.*\(tried 1 time\)"):
        ask(call, message)


@pytest.mark.parametrize(
    ("args", "status", "said"),
    [
        (["--a2a", "ftp://127.0.0.1:1"], 2, "is not an http(s) URL"),
        (["--a2a", "http://me:secret@127.0.0.1:1"], 2, "must not carry a user, a password"),
        (["--a2a", "http://127.0.0.1:1", "--lobby", "Bad Lobby"], 2, "lobby name"),
        (["--a2a", "http://127.0.0.1:1", "--lobby", "t-nowhere-xyz"], 1, "t-nowhere-xyz"),
        ([], 2, "give NAME and --a2a URL"),
    ],
    ids=["scheme", "credentials", "bad-lobby-name", "unknown-lobby", "no-url"],
)
def test_add_remote_refuses_bad_arguments_and_registers_nothing(
    info: StackInfo, cli_env: dict[str, str], args: list[str], status: int, said: str
) -> None:
    name = new_agent_name()
    done = run_cli(cli_env, "agents", "add-remote", name, *args)
    assert done.returncode == status, (done.stdout, done.stderr)
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert Registry(info.project).agents_named([name]) == []


def test_add_remote_refuses_a_bad_name_and_the_name_of_a_function_agent(
    info: StackInfo, cli_env: dict[str, str], lobby_name: str
) -> None:
    create_lobby_with(settings_for(info), lobby_name)
    bad = run_cli(cli_env, "agents", "add-remote", "Not-A-Name", "--a2a", "http://127.0.0.1:1")
    assert bad.returncode == 2 and "agent name 'Not-A-Name'" in bad.stderr, bad.stderr
    before = Registry(info.project).agent("echo")
    taken = run_cli(
        cli_env,
        "agents",
        "add-remote",
        "echo",
        "--a2a",
        "http://127.0.0.1:1",
        "--lobby",
        lobby_name,
    )
    assert taken.returncode == 1, taken.stderr
    assert "already registered" in taken.stderr and "choose another NAME" in taken.stderr
    assert Registry(info.project).agent("echo") == before
    agents = json.loads(cli_ok(cli_env, "agents", "--json"))
    assert lobby_name not in next(a for a in agents if a["name"] == "echo")["lobbies"]
