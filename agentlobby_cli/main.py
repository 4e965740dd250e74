"""The `agentlobby` command: start the local stack, run the demo, manage lobbies, chat, run code.

Imports stay inside the commands, so `agentlobby run-code` does not pay for Google's SDKs.
Client commands find the stack `up` started (or the standard variables) through
stack_state.find_stack, and exit 1 with a message naming the fix when something is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_USAGE = 2


def _connect() -> Any:
    """Find the stack and point Google's clients in this process at it."""
    from local_emulator.stack_state import find_stack

    info = find_stack()
    for key, value in info.client_environment().items():
        os.environ.setdefault(key, value)
    return info


def _user_client(info: Any) -> Any:
    """The HTTP client; AGENTLOBBY_ID_TOKEN passes IAM in front of a deployed user function."""
    from agentlobby_cli.client import UserClient

    id_token = os.environ.get("AGENTLOBBY_ID_TOKEN")
    return UserClient(info.user_url, info.api_token, id_token=id_token)


def _settings() -> Any:
    from agentlobby.config import load_settings

    _connect()
    return load_settings()


def cmd_up(args: argparse.Namespace) -> int:
    from agentlobby_cli.up import run_up

    return run_up(port_base=args.port_base, as_json=args.json)


def cmd_demo(args: argparse.Namespace) -> int:
    from agentlobby_cli.demo import run_demo

    return run_demo()


def cmd_lobbies(args: argparse.Namespace) -> int:
    from agentlobby.store import membership
    from agentlobby.store.registry import Registry

    settings = _settings()
    if args.action == "create":
        if not args.name:
            print("agentlobby lobbies create: give the lobby's NAME", file=sys.stderr)
            return EXIT_USAGE
        record = membership.create_lobby(settings, args.name)
        print(f"lobby {record.name} is ready")
        return 0
    registry = Registry(settings.project)
    members: dict[str, list[str]] = {}
    for m in registry.memberships():
        members.setdefault(m.lobby, []).append(m.agent)
    rows = [{"name": x.name, "members": members.get(x.name, [])} for x in registry.lobbies()]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['name']:<24} {', '.join(row['members']) or '(no agents)'}")
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    from agentlobby.messages import check_agent_name, now
    from agentlobby.store.registry import AgentRecord, Registry

    settings = _settings()
    registry = Registry(settings.project)
    if args.action == "set":
        if not args.name or not args.setting:
            print("agentlobby agents set: give NAME KEY=VALUE", file=sys.stderr)
            return EXIT_USAGE
        key, sep, raw = args.setting.partition("=")
        if not sep or not key:
            print(f"agentlobby agents set: {args.setting!r} is not KEY=VALUE", file=sys.stderr)
            return EXIT_USAGE
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        record = registry.set_setting(args.name, key, value)
        print(f"agent {record.name} settings: {json.dumps(record.settings)}")
        return 0
    if args.action == "register":
        if not args.name or not args.endpoint:
            print("agentlobby agents register: give NAME and --endpoint URL", file=sys.stderr)
            return EXIT_USAGE
        check_agent_name(args.name)
        registry.put_agent(
            AgentRecord(
                name=args.name,
                endpoint=args.endpoint,
                description=args.description or "",
                push_auth_service_account=args.push_auth_service_account,
                registered_at=now(),
            )
        )
        print(f"agent {args.name} registered at {args.endpoint}")
        return 0
    lobbies: dict[str, list[str]] = {}
    for m in registry.memberships():
        lobbies.setdefault(m.agent, []).append(m.lobby)
    rows = [
        {
            "name": a.name,
            "endpoint": a.endpoint,
            "lobbies": lobbies.get(a.name, []),
            "description": a.description,
        }
        for a in registry.agents()
    ]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            where = ", ".join(row["lobbies"]) or "(no lobby)"
            print(f"{row['name']:<14} {where:<20} {row['endpoint']}")
    return 0


def cmd_enter(args: argparse.Namespace) -> int:
    from agentlobby.store import membership

    membership.enter(_settings(), args.agent, args.lobby)
    print(f"{args.agent} entered {args.lobby}")
    return 0


def cmd_leave(args: argparse.Namespace) -> int:
    from agentlobby.store import membership

    was_member = membership.leave(_settings(), args.agent, args.lobby)
    print(
        f"{args.agent} left {args.lobby}" if was_member else f"{args.agent} was not in {args.lobby}"
    )
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from agentlobby_cli.follow import follow_conversation

    info = _connect()
    client = _user_client(info)
    posted = client.post(args.lobby, args.text, conversation_id=args.conversation)
    print(json.dumps(posted.model_dump()))
    if args.wait:
        return follow_conversation(
            client, info.project, posted.conversation_id, args.timeout, skip=1
        )
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from agentlobby_cli.follow import follow_conversation

    info = _connect()
    client = _user_client(info)
    return follow_conversation(client, info.project, args.conversation_id, args.timeout)


def cmd_chat(args: argparse.Namespace) -> int:
    from agentlobby_cli.chat import run_chat

    return run_chat(_connect(), args.lobby, conversation_id=args.conversation)


def cmd_run_code(argv: list[str]) -> int:
    from agentlobby_cli.run_code import main

    return main(argv)


def cmd_model_server(argv: list[str]) -> int:
    from local_emulator.model_server.server import main

    return main(argv)


PASSTHROUGH: dict[str, Callable[[list[str]], int]] = {
    "run-code": cmd_run_code,
    "model-server": cmd_model_server,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentlobby",
        description="Agents that talk in lobbies on Pub/Sub, with Firestore transcripts.",
        epilog="Also: `agentlobby run-code FILE` (sandbox) and `agentlobby model-server` "
        "(offline OpenAI-compatible server); each has its own --help.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start the local stack in the foreground (Ctrl-C stops it)")
    up.add_argument(
        "--port-base",
        type=int,
        default=8680,
        help="first port; the stack uses a block from here (0: any free ports)",
    )
    up.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line with the stack's addresses once it answers",
    )
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser(
        "demo",
        help="start a stack offline, run a chat and two coding tasks live, stop it (make demo)",
    )
    demo.set_defaults(func=cmd_demo)

    lobbies = sub.add_parser("lobbies", help="list lobbies, or `lobbies create NAME`")
    lobbies.add_argument("action", nargs="?", choices=["create"], help="create a lobby")
    lobbies.add_argument("name", nargs="?", help="the new lobby's name")
    lobbies.add_argument("--json", action="store_true", help="print JSON")
    lobbies.set_defaults(func=cmd_lobbies)

    agents = sub.add_parser(
        "agents",
        help="list agents; `agents register NAME --endpoint URL`; `agents set NAME KEY=VALUE`",
    )
    agents.add_argument(
        "action",
        nargs="?",
        choices=["register", "set"],
        help="register an agent, or change one of its settings",
    )
    agents.add_argument("name", nargs="?", help="the agent's name (its entry point in main.py)")
    agents.add_argument("setting", nargs="?", help="with set: KEY=VALUE, e.g. max_rounds=5")
    agents.add_argument("--endpoint", help="the base URL of the agent's function")
    agents.add_argument("--description", help="what the agent does")
    agents.add_argument(
        "--push-auth-service-account",
        help="service account whose OIDC token authenticates pushes (cloud)",
    )
    agents.add_argument("--json", action="store_true", help="print JSON")
    agents.set_defaults(func=cmd_agents)

    for name, func, verb in (("enter", cmd_enter, "join"), ("leave", cmd_leave, "leave")):
        p = sub.add_parser(name, help=f"make AGENT {verb} LOBBY now, nothing restarted")
        p.add_argument("agent")
        p.add_argument("lobby")
        p.set_defaults(func=func)

    send = sub.add_parser("send", help="post one message to a lobby")
    send.add_argument("lobby")
    send.add_argument("text")
    send.add_argument("--conversation", help="continue this conversation id")
    send.add_argument(
        "--wait",
        action="store_true",
        help="then print replies until the conversation ends or --timeout",
    )
    send.add_argument("--timeout", type=float, default=30.0, help="seconds to wait (default 30)")
    send.set_defaults(func=cmd_send)

    watch = sub.add_parser("watch", help="print a conversation's messages as they arrive")
    watch.add_argument("conversation_id")
    watch.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="stop after this many seconds (default: when the conversation ends)",
    )
    watch.set_defaults(func=cmd_watch)

    chat = sub.add_parser("chat", help="chat in a lobby: lines from stdin, lobby messages out")
    chat.add_argument("lobby")
    chat.add_argument("--conversation", help="continue this conversation id")
    chat.set_defaults(func=cmd_chat)

    sub.add_parser(
        "run-code", help="run a Python file in the sandbox, print a JSON result", add_help=False
    )
    sub.add_parser("model-server", help="serve the offline OpenAI-compatible model", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in PASSTHROUGH:
        return PASSTHROUGH[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    from agentlobby.errors import AgentlobbyError

    try:
        result: int = args.func(args)
        return result
    except AgentlobbyError as exc:
        print(f"agentlobby {args.command}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        from pydantic import ValidationError

        from agentlobby.messages import describe_validation_error

        message = (
            describe_validation_error(exc, "argument")
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        print(f"agentlobby {args.command}: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
