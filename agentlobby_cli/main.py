"""The `agentlobby` command: start the local stack, run the demo, manage lobbies, chat, run code.

Imports stay inside the commands, so `agentlobby run-code` does not pay for Google's SDKs.
Arguments are checked where argparse reads them (agentlobby_cli/arguments.py), with the
library's own rules, so bad input is one line and exit status 2 before anything connects.
Client commands find the stack through stack_state.choose_stack. No command shows a traceback:
an error is one line naming the fix (AGENTLOBBY_DEBUG=1 shows the traceback of an unexpected
one).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentlobby_cli import arguments as check
from agentlobby_cli.arguments import EXIT_USAGE, Parser, say_error

EXIT_OK = 0
EXIT_ERROR = 1  # also: the conversation failed (send --wait, watch)
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130

EXIT_CODES = """\
exit status: 0 done (a conversation followed to `succeeded`, or a chat answered);
1 the conversation failed, or the command could not do its work (the line on stderr says
which); 2 bad arguments or files; 3 --timeout passed before the conversation ended (or, for a
chat, before any reply); 130 interrupted."""


def _connect(args: argparse.Namespace) -> Any:
    """Find the stack and point Google's clients in this process at it."""
    from local_emulator.stack_state import choose_stack

    info, note = choose_stack(name=getattr(args, "stack", None))
    if note:
        print(f"agentlobby: {note}", file=sys.stderr, flush=True)
    os.environ.update(info.client_environment())
    return info


def _user_client(info: Any) -> Any:
    """The HTTP client; AGENTLOBBY_ID_TOKEN passes IAM in front of a deployed user function."""
    from agentlobby_cli.client import UserClient

    id_token = os.environ.get("AGENTLOBBY_ID_TOKEN")
    return UserClient(info.user_url, info.api_token, id_token=id_token)


def _settings(args: argparse.Namespace) -> Any:
    from agentlobby.config import load_settings

    _connect(args)
    return load_settings()


def cmd_up(args: argparse.Namespace) -> int:
    from agentlobby_cli.up import run_up

    return run_up(
        port_base=args.port_base,
        as_json=args.json,
        name=args.name,
        model_script=args.model_script,
        real_model=args.real_model,
        offline=args.offline,
        trace=not args.no_trace,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from agentlobby_cli.demo import run_demo

    return run_demo()


def cmd_stacks(args: argparse.Namespace) -> int:
    from local_emulator.stack_state import running_stacks

    stacks = running_stacks()
    if args.json:
        print(json.dumps([{k: v for k, v in vars(s).items() if k != "api_token"} for s in stacks]))
        return EXIT_OK
    if not stacks:
        print("no stack is running: start one with `agentlobby up`", file=sys.stderr)
    for info in stacks:
        age = f"{(time.time() - info.started_at) / 60:.0f} min" if info.started_at else "?"
        pid = str(info.pid or "?")
        print(f"{info.name:<20} {info.user_url:<24} pid {pid:<8} up {age:<8} {info.log_dir}")
    return EXIT_OK


def cmd_env(args: argparse.Namespace) -> int:
    info = _connect(args)
    for key, value in info.client_environment().items():
        print(f"export {key}={shlex.quote(value)}")
    return EXIT_OK


def cmd_lobbies(args: argparse.Namespace) -> int:
    from agentlobby.store import membership
    from agentlobby.store.registry import Registry

    if args.action == "create" and not args.name:
        say_error("lobbies create", "give the lobby's NAME")
        return EXIT_USAGE
    settings = _settings(args)
    if args.action == "create":
        record = membership.create_lobby(settings, args.name)
        print(f"lobby {record.name} is ready")
        return EXIT_OK
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
    return EXIT_OK


def cmd_agents(args: argparse.Namespace) -> int:
    from agentlobby.errors import InvalidMessage
    from agentlobby.messages import now
    from agentlobby.store.rate_limits import RateWindows
    from agentlobby.store.registry import AgentRecord, DeclaredSetting, Registry

    if args.action == "set" and (not args.name or not args.setting):
        say_error("agents set", "give NAME KEY=VALUE")
        return EXIT_USAGE
    if args.action == "register" and (not args.name or not args.endpoint):
        say_error("agents register", "give NAME and --endpoint URL")
        return EXIT_USAGE
    if args.action == "add-remote":
        from agentlobby_cli.remote import add_remote

        if not args.name or not args.a2a or args.setting:
            say_error("agents add-remote", "give NAME and --a2a URL (and --lobby LOBBY)")
            return EXIT_USAGE
        return add_remote(args, _connect(args))
    settings = _settings(args)
    registry = Registry(settings.project)
    if args.action == "set":
        key, _sep, raw = args.setting.partition("=")
        try:
            record = registry.set_setting(args.name, key, raw)
        except InvalidMessage as exc:  # a key or value the agent does not declare: usage
            say_error("agents set", str(exc))
            return EXIT_USAGE
        print(f"agent {record.name} settings: {json.dumps(record.settings)}")
        return EXIT_OK
    if args.action == "register":
        from local_emulator.roster import declared_agent
        from local_emulator.stack import FUNCTIONS_DIR

        # What main.py's agent declares, unless the flags say otherwise: the sweeper learns
        # from `listens_to` which members should handle a message.
        spec = declared_agent(args.name, FUNCTIONS_DIR)
        kinds = args.listens_to or (sorted(spec.listens_to) if spec else [])
        registry.put_agent(
            AgentRecord(
                name=args.name,
                endpoint=args.endpoint,
                description=args.description or (spec.description if spec else ""),
                listens_to=tuple(kinds),
                declared=tuple(
                    DeclaredSetting.model_validate(s.declared())
                    for s in (spec.settings if spec else ())
                ),
                push_auth_service_account=args.push_auth_service_account,
                registered_at=now(),
            )
        )
        print(f"agent {args.name} registered at {args.endpoint}")
        return EXIT_OK
    limits = RateWindows(settings.project).reported()
    lobbies: dict[str, list[str]] = {}
    for m in registry.memberships():
        lobbies.setdefault(m.agent, []).append(m.lobby)
    rows: list[dict[str, Any]] = [
        {
            "name": a.name,
            "endpoint": a.endpoint,
            "lobbies": lobbies.get(a.name, []),
            "description": a.description,
            "listens_to": list(a.listens_to),
            "settings": settings_in_force(a, limits),
            "a2a_url": a.a2a_url,
        }
        for a in registry.agents()
    ]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            where = ", ".join(row["lobbies"]) or "(no lobby)"
            target = f"A2A {row['a2a_url']}" if row["a2a_url"] else row["endpoint"]
            print(f"{row['name']:<14} {where:<20} {target}")
            for setting in row["settings"]:
                print(f"  {setting['name']} = {setting['value']}  ({setting['source']})")
        for posts in (r for r in limits if r.what == "posts"):
            print(f"user posts: {_rate(posts.limits)} per token  ({_reported(posts)})")
    return EXIT_OK


def _rate(limits: dict[str, Any]) -> str:
    """`2 requests, 10000 tokens per 60s` from a reported limit."""
    names = {
        "requests_per_minute": "requests",
        "tokens_per_minute": "tokens",
        "posts_per_minute": "posts",
    }
    counts = [f"{limits[key]} {word}" for key, word in names.items() if key in limits]
    return ", ".join(counts) + f" per {limits.get('window_s', 60):g}s"


def _reported(limit: Any) -> str:
    return f"as the functions reported it at {limit.reported_at[:19]}Z"


def settings_in_force(record: Any, limits: Sequence[Any] = ()) -> list[dict[str, object]]:
    """Each declared setting of an agent: its value and where it comes from. A task's own field
    (a coding task's max_rounds) still wins over what is shown here. Then the rate limit of
    each model the agent called, as its functions reported it (store/rate_limits.py)."""
    shown: list[dict[str, object]] = []
    for setting in record.declared:
        if setting.name in record.settings:
            value, source = record.settings[setting.name], "registry (agents set)"
        elif setting.env:
            value = setting.default
            source = f"default, unless {setting.env} is set in the function's environment"
        else:
            value, source = setting.default, "default"
        shown.append({"name": setting.name, "value": value, "source": source, "doc": setting.doc})
    for limit in limits:
        if limit.what == "model" and record.name in limit.agents:
            shown.append(
                {
                    "name": f"rate limit of {limit.name}",
                    "value": _rate(limit.limits),
                    "source": f"AGENTLOBBY_MODEL_RATE_LIMITS, {_reported(limit)}",
                    "doc": "shared by every agent that calls this model; calls past it wait",
                }
            )
    return shown


def cmd_enter(args: argparse.Namespace) -> int:
    from agentlobby.store import membership

    membership.enter(_settings(args), args.agent, args.lobby)
    print(f"{args.agent} entered {args.lobby}")
    return EXIT_OK


def cmd_leave(args: argparse.Namespace) -> int:
    from agentlobby.store import membership

    was_member = membership.leave(_settings(args), args.agent, args.lobby)
    print(
        f"{args.agent} left {args.lobby}" if was_member else f"{args.agent} was not in {args.lobby}"
    )
    return EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    from agentlobby_cli.follow import follow_conversation

    info = _connect(args)
    client = _user_client(info)
    posted = client.post(
        args.lobby,
        args.text,
        conversation_id=args.conversation,
        tests=args.tests,
        image=args.image,
        max_rounds=args.max_rounds,
        token_budget=args.token_budget,
        cost_budget=args.cost_budget,
    )
    print(json.dumps(posted.model_dump()), flush=True)
    if not args.wait:
        return EXIT_OK
    return follow_conversation(
        client,
        info.project,
        posted.conversation_id,
        args.timeout,
        quiet_s=args.idle,
        after_id=posted.message_id,
    )


def cmd_watch(args: argparse.Namespace) -> int:
    from agentlobby_cli.follow import follow_conversation, watch_of

    info = _connect(args)
    client = _user_client(info)
    lobby = client.conversation(args.conversation_id).lobby
    return follow_conversation(
        client,
        info.project,
        args.conversation_id,
        args.timeout,
        watch=watch_of(info.project, lobby),
    )


def cmd_logs(args: argparse.Namespace) -> int:
    from agentlobby_cli.logs import run_logs

    info = _connect(args)
    return run_logs(
        info, _user_client(info), args.conversation_id, follow=args.follow, as_json=args.json
    )


def cmd_trace(args: argparse.Namespace) -> int:
    from agentlobby_cli.trace import show_trace

    return show_trace(_user_client(_connect(args)), args.conversation_id, as_json=args.json)


def cmd_chat(args: argparse.Namespace) -> int:
    from agentlobby_cli.chat import run_chat

    return run_chat(_connect(args), args.lobby, conversation_id=args.conversation)


def cmd_run_code(argv: list[str]) -> int:
    from agentlobby_cli.run_code import main

    return main(argv)


def cmd_model_server(argv: list[str]) -> int:
    from agentlobby_cli.model_server import main

    return main(argv)


PASSTHROUGH: dict[str, Callable[[list[str]], int]] = {
    "run-code": cmd_run_code,
    "model-server": cmd_model_server,
}


def _stack_option(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--stack",
        metavar="NAME",
        type=check.stack_name,
        default=default,
        help="the running stack to talk to, by the name `up` gave it (default: "
        "AGENTLOBBY_STACK, else the only one running; `agentlobby stacks` lists them)",
    )


def build_parser() -> Parser:
    parser = Parser(
        prog="agentlobby",
        description="Agents that talk in lobbies on Pub/Sub, with Firestore transcripts.",
        epilog="Also: `agentlobby run-code FILE` (sandbox) and `agentlobby model-server` "
        "(offline OpenAI-compatible server); each has its own --help. " + EXIT_CODES,
    )
    _stack_option(parser, None)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # --stack also after the command; SUPPRESS keeps the one given before it.
    client = Parser(add_help=False)
    _stack_option(client, argparse.SUPPRESS)

    up = sub.add_parser(
        "up",
        help="start the local stack in the foreground (Ctrl-C stops it)",
        description="Start the local stack in the foreground; Ctrl-C or SIGTERM stops all of "
        "it. Without OPENAI_API_KEY or OPENAI_BASE_URL the agents' model is the offline model "
        "server playing local_emulator/scripts/default.json.",
    )
    up.add_argument(
        "--port-base",
        type=check.port_base,
        metavar="PORT",
        default=8680,
        help="first port; the stack uses a block from here (default 8680; 0: any free ports)",
    )
    up.add_argument(
        "--name",
        type=check.stack_name,
        help="the stack's name, for its state and logs and for --stack (default: "
        "stack-PORT, by its first port)",
    )
    up.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line with the stack's addresses once it answers",
    )
    up.add_argument(
        "--no-trace",
        action="store_true",
        help="do not collect OpenTelemetry spans (by default the stack keeps them for "
        "`agentlobby trace`, unless OTEL_TRACES_EXPORTER names your own exporter)",
    )
    model = up.add_mutually_exclusive_group()
    model.add_argument(
        "--model-script",
        type=check.existing_file,
        metavar="FILE",
        help="replay this model script (each reply once, in order; also AGENTLOBBY_MODEL_SCRIPT)",
    )
    model.add_argument(
        "--real-model",
        action="store_true",
        help="use the model at OPENAI_BASE_URL or OpenAI's API (needs OPENAI_API_KEY or "
        "OPENAI_BASE_URL); the default when either is set",
    )
    model.add_argument(
        "--offline",
        action="store_true",
        help="use the offline model server and its default script even when a key is set",
    )
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser(
        "demo",
        help="start a stack offline, run a chat and two coding tasks live, stop it (make demo)",
    )
    demo.set_defaults(func=cmd_demo)

    stacks = sub.add_parser("stacks", help="list the running stacks (names for --stack)")
    stacks.add_argument("--json", action="store_true", help="print JSON (without the tokens)")
    stacks.set_defaults(func=cmd_stacks)

    env = sub.add_parser(
        "env",
        parents=[client],
        help='print `export` lines for the stack: eval "$(agentlobby env)"',
        description="Print the variables that reach the stack (its user URL, API token, "
        "emulator hosts, project) as shell `export` lines: "
        'eval "$(agentlobby env)" sets them, for curl or your own code.',
    )
    env.set_defaults(func=cmd_env)

    lobbies = sub.add_parser(
        "lobbies", parents=[client], help="list lobbies, or `lobbies create NAME`"
    )
    lobbies.add_argument("action", nargs="?", choices=["create"], help="create a lobby")
    lobbies.add_argument("name", nargs="?", type=check.lobby_name, help="the new lobby's name")
    lobbies.add_argument("--json", action="store_true", help="print JSON")
    lobbies.set_defaults(func=cmd_lobbies)

    agents = sub.add_parser(
        "agents",
        parents=[client],
        help="list agents; `agents register NAME --endpoint URL`; `agents set NAME KEY=VALUE`; "
        "`agents add-remote NAME --a2a URL --lobby LOBBY`",
    )
    agents.add_argument(
        "action",
        nargs="?",
        choices=["register", "set", "add-remote"],
        help="register an agent, change one of its settings, or make a remote A2A agent a "
        "member (docs/a2a.md)",
    )
    agents.add_argument(
        "name", nargs="?", type=check.agent_name, help="the agent's name (its entry point)"
    )
    agents.add_argument(
        "setting", nargs="?", type=check.setting, help="with set: KEY=VALUE, e.g. max_rounds=5"
    )
    agents.add_argument("--endpoint", type=check.url, help="the base URL of the agent's function")
    agents.add_argument("--description", type=check.description, help="what the agent does")
    agents.add_argument(
        "--listens-to",
        type=check.kinds,
        metavar="KIND,KIND",
        help="with register or add-remote: the message kinds it handles (default: what its "
        "AGENT in functions/main.py declares; text for a remote agent)",
    )
    agents.add_argument(
        "--push-auth-service-account",
        type=check.service_account,
        help="service account whose OIDC token authenticates pushes (cloud)",
    )
    agents.add_argument(
        "--a2a", type=check.a2a_url, metavar="URL", help="with add-remote: the A2A agent's URL"
    )
    agents.add_argument(
        "--lobby",
        type=check.lobby_name,
        action="append",
        metavar="LOBBY",
        help="with add-remote: a lobby it joins (repeat for more)",
    )
    agents.add_argument(
        "--function-url",
        type=check.url,
        metavar="URL",
        help="with add-remote: the deployed `remote` function's URL (default: "
        "AGENTLOBBY_REMOTE_URL, else the local stack's)",
    )
    agents.add_argument("--json", action="store_true", help="print JSON")
    agents.set_defaults(func=cmd_agents)

    for name, func, verb in (("enter", cmd_enter, "join"), ("leave", cmd_leave, "leave")):
        p = sub.add_parser(
            name, parents=[client], help=f"make AGENT {verb} LOBBY now, nothing restarted"
        )
        p.add_argument("agent", metavar="AGENT", type=check.agent_name)
        p.add_argument("lobby", metavar="LOBBY", type=check.lobby_name)
        p.set_defaults(func=func)

    _add_send(sub, client)

    watch = sub.add_parser(
        "watch",
        parents=[client],
        help="print a conversation's messages as they arrive",
        description="Print a conversation's messages, stored and live, until it ends. A chat "
        "(status open) never ends by itself: watch says so and stops at --timeout or Ctrl-C.",
        epilog=EXIT_CODES,
    )
    watch.add_argument("conversation_id", metavar="CONVERSATION_ID", type=check.conversation_id)
    watch.add_argument(
        "--timeout",
        type=check.positive_seconds,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: when the conversation ends)",
    )
    watch.set_defaults(func=cmd_watch)

    trace = sub.add_parser(
        "trace",
        parents=[client],
        help="print a conversation's span tree: agent, duration, tokens, outcome",
        description="Print the OpenTelemetry trace of one conversation as a tree: every "
        "delivery to an agent, model call and sandbox run, with its duration, tokens and "
        "outcome. The local stack collects spans unless started with --no-trace; deployed, "
        "spans are in Cloud Trace (docs/observability.md).",
        epilog=EXIT_CODES,
    )
    trace.add_argument("conversation_id", metavar="CONVERSATION_ID", type=check.conversation_id)
    trace.add_argument("--json", action="store_true", help="print the spans as JSON")
    trace.set_defaults(func=cmd_trace)
    _add_logs(sub, client)

    chat = sub.add_parser(
        "chat", parents=[client], help="chat in a lobby: lines from stdin, lobby messages out"
    )
    chat.add_argument("lobby", metavar="LOBBY", type=check.lobby_name)
    chat.add_argument(
        "--conversation", type=check.conversation_id, help="continue this conversation id"
    )
    chat.set_defaults(func=cmd_chat)

    for name, help_text in (
        ("run-code", "run a Python file in the sandbox, print a JSON result"),
        ("model-server", "serve the offline OpenAI-compatible model"),
    ):
        p = sub.add_parser(name, help=help_text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda args: PASSTHROUGH[args.command](args.rest))
    return parser


def _add_logs(sub: Any, client: Parser) -> None:
    logs = sub.add_parser(
        "logs",
        parents=[client],
        help="print one conversation's log lines from every function, in time order",
        description="Print the log lines of one conversation from every function of the local "
        "stack (its log folder: `agentlobby stacks`), merged in time order: time, function "
        "and agent, severity, message, and the message id, delivery attempt and trace. "
        "Lines that are not the library's JSON (the servers' own) are left out. With "
        "--follow, keep printing new lines until the conversation is over (and 3 seconds "
        "more) or Ctrl-C.",
    )
    logs.add_argument("conversation_id", metavar="CONVERSATION_ID", type=check.conversation_id)
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep printing lines as they are written"
    )
    logs.add_argument(
        "--json", action="store_true", help="print each line's JSON object as the function wrote it"
    )
    logs.set_defaults(func=cmd_logs)


def _add_send(sub: Any, client: Parser) -> None:
    send = sub.add_parser(
        "send",
        parents=[client],
        help="post one message (or a coding task) to a lobby",
        description="Post one message to a lobby and print its ids as JSON. In the coding "
        "lobby every post is a task: --tests, --image, --max-rounds, --token-budget and "
        "--cost-budget complete it. With --wait, print what follows: a task until it succeeds "
        "or fails; a chat (status open, which never ends by itself) until replies came and "
        "then nothing for --idle seconds. The end is one line on stderr, after a task's final "
        "code.",
        epilog=EXIT_CODES,
    )
    send.add_argument("lobby", metavar="LOBBY", type=check.lobby_name, help="e.g. chat, coding")
    send.add_argument(
        "text", metavar="TEXT", type=check.message_text, help="the message, or the task"
    )
    send.add_argument(
        "--conversation",
        type=check.conversation_id,
        metavar="ID",
        help="continue this conversation",
    )
    send.add_argument(
        "--tests",
        type=check.tests_file,
        metavar="FILE",
        help="coding: a Python file of tests, run after the code; exit code 0 passes",
    )
    send.add_argument(
        "--image",
        type=check.image_file,
        metavar="FILE",
        help="coding: a PNG, JPEG, GIF or WebP image for the vision agent (type read from "
        "its bytes)",
    )
    send.add_argument(
        "--max-rounds",
        type=check.int_from(1, 20),
        metavar="N",
        help="coding: rounds of code, run and check before the task fails (1-20)",
    )
    send.add_argument(
        "--token-budget",
        type=check.int_from(1, 100_000_000),
        metavar="N",
        help="coding: model tokens the task may spend before it fails",
    )
    send.add_argument(
        "--cost-budget",
        type=check.dollars,
        metavar="USD",
        help="coding: US dollars of model use (by the price table) the task may spend before "
        "it fails",
    )
    send.add_argument(
        "--wait",
        action="store_true",
        help="then print what follows, until the conversation ends (see above)",
    )
    send.add_argument(
        "--timeout",
        type=check.positive_seconds,
        default=60.0,
        metavar="SECONDS",
        help="with --wait: give up after this long, exit status 3 (default 60)",
    )
    send.add_argument(
        "--idle",
        type=check.positive_seconds,
        default=3.0,
        metavar="SECONDS",
        help="with --wait, for a chat: stop once replies came and then nothing for this long "
        "(default 3)",
    )
    send.set_defaults(func=cmd_send)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (usage errors too: nothing raises)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in PASSTHROUGH else None
    if command is not None:
        return _guarded(command, lambda: PASSTHROUGH[command](argv[1:]))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return _guarded(args.command, lambda: int(args.func(args)))


def _guarded(command: str, run: Callable[[], int]) -> int:
    """Run a command; whatever goes wrong is one line on stderr and an exit status."""
    from agentlobby.errors import AgentlobbyError, ApiError

    try:
        return run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `agentlobby ... | head`: nobody reads any more
        _silence_stdout()
        return EXIT_ERROR
    except ApiError as exc:  # the API refused what was sent: 413 and 422 are bad input
        say_error(command, str(exc))
        return EXIT_USAGE if exc.status in (413, 422) else EXIT_ERROR
    except AgentlobbyError as exc:
        say_error(command, str(exc))
        return EXIT_ERROR
    except ValueError as exc:
        from pydantic import ValidationError

        from agentlobby.messages import describe_validation_error

        message = (
            describe_validation_error(exc, "argument")
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        say_error(command, message)
        return EXIT_USAGE
    except OSError as exc:
        say_error(command, str(exc))
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("AGENTLOBBY_DEBUG"):
            raise
        say_error(
            command,
            f"unexpected {type(exc).__name__}: {exc} (AGENTLOBBY_DEBUG=1 shows the traceback)",
        )
        return EXIT_ERROR


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
