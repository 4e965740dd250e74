"""The terminal user agent: lines from stdin become posts, lobby messages are printed live."""

from __future__ import annotations

import os
import sys
import threading
import time

from agentlobby.api.views import message_view
from agentlobby.store.tail import LobbyTail
from agentlobby_cli.client import UserClient
from agentlobby_cli.render import message_line
from local_emulator.stack_state import StackInfo

DRAIN_IDLE_S = 3.0
DRAIN_MAX_S = 20.0


def run_chat(info: StackInfo, lobby: str, *, conversation_id: str | None = None) -> int:
    client = UserClient(
        info.user_url, info.api_token, id_token=os.environ.get("AGENTLOBBY_ID_TOKEN")
    )
    last_seen = [time.monotonic()]
    stop = threading.Event()
    with LobbyTail(info.project, lobby) as tail:

        def printer() -> None:
            seen: set[str] = set()  # delivery is at least once: print each message once
            while not stop.is_set():
                message = tail.get(timeout=0.2)
                if message is not None and message.id not in seen:
                    seen.add(message.id)
                    last_seen[0] = time.monotonic()
                    print(message_line(message_view(message)), flush=True)

        thread = threading.Thread(target=printer, daemon=True)
        thread.start()
        try:
            if sys.stdin.isatty():
                hint = f"chatting in {lobby}; type a line and Enter, Ctrl-D to leave"
                print(hint, file=sys.stderr)
            for line in sys.stdin:
                text = line.rstrip("\n")
                if not text.strip():
                    continue
                posted = client.post(lobby, text, conversation_id=conversation_id)
                conversation_id = posted.conversation_id
                last_seen[0] = time.monotonic()
            # Stdin ended: let the replies to the last lines arrive before leaving.
            started = time.monotonic()
            while (
                time.monotonic() - last_seen[0] < DRAIN_IDLE_S
                and time.monotonic() - started < DRAIN_MAX_S
            ):
                time.sleep(0.1)
        finally:
            stop.set()
            thread.join(timeout=2)
    if conversation_id:
        print(f"conversation {conversation_id}", file=sys.stderr)
    return 0
