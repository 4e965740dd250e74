"""Printing a conversation as it happens, and knowing when to stop: `send --wait` and `watch`.

Messages are printed from the stored transcript first, then live from the lobby (with the
transcript read again every few seconds, so nothing the live tail misses is lost). When to
stop depends on the conversation's status:

- `succeeded` or `failed`: it is over; stop and say so (exit 0 or 1).
- `running` (a task): wait for it to end, up to the timeout (then exit 3).
- `open` (a chat, which never ends by itself): with `quiet_s` (send --wait), stop once a reply
  came and nothing more for `quiet_s` seconds (exit 0), or at the timeout with no reply yet
  (exit 3); without it (watch), follow until the timeout (exit 0) or Ctrl-C. A chat message
  that an agent takes up as a task moves the conversation to `running`.

Messages go to stdout, one line (or a few) each, and a task's final code after them; what
happened in the end goes to stderr as one line. `watch` adds a status line (`Watch`): who is
working, the round, elapsed time, tokens, cost and the latest run (progress.py), redrawn in
place on a terminal and printed as plain `-- ` lines elsewhere (live_status.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from agentlobby.agents.coding import CHECKER_AGENT
from agentlobby.api.schema import ConversationView, MessageView
from agentlobby.api.views import message_view
from agentlobby.lifecycle import is_over
from agentlobby.messages import USER_SENDER
from agentlobby.store.tail import LobbyTail
from agentlobby_cli.client import UserClient
from agentlobby_cli.live_status import LiveStatus
from agentlobby_cli.progress import Progress, progress_of
from agentlobby_cli.render import message_line

STATUS_CHECK_S = 2.0
EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 3


class ConversationPrinter:
    """Prints each message of one conversation once, whichever way it arrived."""

    def __init__(self, conversation_id: str, out: Callable[[str], None] | None = None) -> None:
        self.conversation_id = conversation_id
        self.seen: set[str] = set()
        self.known: dict[str, MessageView] = {}  # every message met, printed or skipped
        self.replies = 0
        self.out = out or (lambda line: print(line, flush=True))

    def show(self, view: MessageView) -> bool:
        self.known.setdefault(view.id, view)
        if view.id in self.seen:
            return False
        self.seen.add(view.id)
        if view.sender != USER_SENDER:
            self.replies += 1
        self.out(message_line(view))
        return True

    def in_order(self) -> list[MessageView]:
        return sorted(self.known.values(), key=lambda view: view.created_at)


@dataclass(frozen=True)
class Watch:
    """What `watch` shows beside the messages: its status line, from the lobby's members (who
    listens to what) and the default maximum of rounds (progress.py)."""

    live: LiveStatus
    members: Mapping[str, frozenset[str]]
    default_max_rounds: int | None

    def draw(self, printer: ConversationPrinter, state: ConversationView) -> None:
        self.live.update(self._progress(printer, state))

    def close(self, printer: ConversationPrinter, state: ConversationView) -> None:
        self.live.close(self._progress(printer, state))

    def _progress(self, printer: ConversationPrinter, state: ConversationView) -> Progress:
        return progress_of(
            printer.in_order(),
            state.status,
            self.members,
            self.default_max_rounds,
            datetime.now(UTC),
            state.cost.total_usd,
        )


@dataclass(frozen=True)
class Ending:
    """How following a conversation ended: the exit status and the line that says why."""

    code: int
    summary: str


def watch_of(project: str, lobby: str, live: LiveStatus | None = None) -> Watch:
    """The Watch of a conversation in `lobby`, from the registry: its members and the
    checker's max_rounds setting (else AGENTLOBBY_MAX_ROUNDS)."""
    from agentlobby.config import load_settings
    from agentlobby.store.registry import Registry

    registry = Registry(project)
    members = {agent: kinds for agent, (_since, kinds) in registry.members_since(lobby).items()}
    checker = registry.agents_named([CHECKER_AGENT])
    configured = checker[0].settings.get("max_rounds") if checker else None
    default = configured if isinstance(configured, int) else load_settings().max_rounds
    return Watch(live or LiveStatus(), members, default)


def follow_conversation(
    client: UserClient,
    project: str,
    conversation_id: str,
    timeout_s: float | None,
    *,
    quiet_s: float | None = None,
    after_id: str | None = None,
    show_final_code: bool = True,
    watch: Watch | None = None,
) -> int:
    """Print the conversation until it is over or should stop (module docstring); returns the
    exit status and prints the ending's line to stderr.

    `after_id` leaves out the stored messages up to and including that one (what `send` just
    posted, and the conversation's earlier history)."""
    state, printer, why = _follow(
        client, project, conversation_id, timeout_s, quiet_s, after_id, watch
    )
    if is_over(state.status) and state.final_code and show_final_code:
        print(f"--- final code (round {state.rounds}):\n{state.final_code.rstrip()}", flush=True)
    ending = _ending(state, printer, why, timeout_s, quiet_s)
    print(ending.summary, file=sys.stderr, flush=True)
    return ending.code


def settle(
    client: UserClient, project: str, conversation_id: str, timeout_s: float, quiet_s: float
) -> tuple[ConversationView, Ending]:
    """Follow as `send --wait` does, printing nothing (the pytest plugin's wait): until the
    conversation is over, or a chat has had a reply and then `quiet_s` of quiet, or the
    timeout. Returns the last state and how it ended."""
    state, printer, why = _follow(
        client, project, conversation_id, timeout_s, quiet_s, None, out=lambda _line: None
    )
    return state, _ending(state, printer, why, timeout_s, quiet_s)


def _follow(
    client: UserClient,
    project: str,
    conversation_id: str,
    timeout_s: float | None,
    quiet_s: float | None,
    after_id: str | None,
    watch: Watch | None = None,
    out: Callable[[str], None] | None = None,
) -> tuple[ConversationView, ConversationPrinter, str]:
    """Returns the last state read, the printer, and why it stopped: over, timeout or quiet."""
    started = time.monotonic()
    deadline = None if timeout_s is None else started + timeout_s
    first = client.conversation(conversation_id)
    printer = ConversationPrinter(conversation_id, watch.live.message if watch else out)
    with LobbyTail(project, first.lobby) as tail:
        state = client.conversation(conversation_id)
        skipping = after_id is not None and any(m.id == after_id for m in state.messages)
        for view in state.messages:
            if skipping:
                printer.seen.add(view.id)
                skipping = view.id != after_id
            else:
                printer.show(view)
        if watch:
            watch.draw(printer, state)
        if state.status == "open" and quiet_s is None and deadline is None:
            print(
                f"conversation {conversation_id} is open: a chat never ends by itself, so this "
                "prints its messages until Ctrl-C (or pass --timeout SECONDS)",
                file=sys.stderr,
                flush=True,
            )
        last_news = last_check = time.monotonic()
        why = "over"
        while not is_over(state.status):
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                why = "timeout"
                break
            answered = state.status == "open" and printer.replies > 0
            if answered and quiet_s is not None and now - last_news >= quiet_s:
                why = "quiet"
                break
            message = tail.get(timeout=0.5)
            if message is not None and message.conversation_id == conversation_id:
                if printer.show(message_view(message)):
                    last_news = time.monotonic()
                if message.kind == "result":
                    last_check = 0.0  # read the final status now
            if time.monotonic() - last_check >= STATUS_CHECK_S:
                # A step can end the conversation without a message (a dead letter), and the
                # live tail can miss what was published before it was subscribed.
                state, last_check = client.conversation(conversation_id), time.monotonic()
                for view in state.messages:
                    if printer.show(view):
                        last_news = time.monotonic()
            if watch:
                watch.draw(printer, state)  # the clock ticks with each wait on the tail
        state = client.conversation(conversation_id)
        for view in state.messages:
            printer.show(view)
        if watch:
            watch.close(printer, state)
    return state, printer, why


def _ending(
    state: ConversationView,
    printer: ConversationPrinter,
    why: str,
    timeout_s: float | None,
    quiet_s: float | None,
) -> Ending:
    name = f"conversation {state.conversation_id}"
    if is_over(state.status):
        rounds = f" after {state.rounds} round(s)" if state.rounds else ""
        tokens = f", {state.usage.total_tokens} tokens" if state.usage.total_tokens else ""
        reason = f": {state.reason}" if state.reason else ""
        code = EXIT_SUCCEEDED if state.status == "succeeded" else EXIT_FAILED
        return Ending(code, f"{name} {state.status}{rounds}{tokens}{reason}")
    waited = f" after {timeout_s:g}s (--timeout)" if timeout_s is not None else ""
    if state.status == "running":
        return Ending(
            EXIT_TIMEOUT,
            f"{name} is still running{waited}: stopped waiting; "
            f"`agentlobby watch {state.conversation_id}` follows it further",
        )
    # open: a chat
    replies = f"{printer.replies} repl{'y' if printer.replies == 1 else 'ies'}"
    if why == "quiet":
        return Ending(
            EXIT_SUCCEEDED,
            f"{name} is open (a chat never ends by itself): {replies}, then nothing for "
            f"{quiet_s:g}s",
        )
    if quiet_s is None:
        return Ending(EXIT_SUCCEEDED, f"{name} is still open{waited}; a chat never ends by itself")
    if printer.replies == 0:
        return Ending(
            EXIT_TIMEOUT,
            f"no reply in {name}{waited}; is any agent in lobby {state.lobby}? "
            "(`agentlobby lobbies`)",
        )
    return Ending(EXIT_TIMEOUT, f"{name} is open, and replies were still coming{waited}: {replies}")
