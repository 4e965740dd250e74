"""`agentlobby demo` (`make demo`): a stack offline, a chat and two coding tasks, printed live
and shown on the page (its address is printed first; at a terminal the stack stays up for it
after the tasks until Enter).

No key and no network: the agents' model is the offline model server playing
local_emulator/scripts/demo.json (or the script named by AGENTLOBBY_MODEL_SCRIPT).
Everything started here is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
import time
from pathlib import Path

import local_emulator
from agentlobby.cost import usd
from agentlobby_cli.client import UserClient
from agentlobby_cli.follow import follow_conversation
from agentlobby_cli.trace import tree_lines
from local_emulator.stack import Stack

ASSETS = Path(local_emulator.__file__).resolve().parent
DEMO_SCRIPT = ASSETS / "scripts" / "demo.json"
IMAGE = ASSETS / "demo_assets" / "checkerboard.png"
TASK_TIMEOUT_S = 120.0

FIZZBUZZ_TASK = (
    "Write fizzbuzz(n) returning 'Fizz' for multiples of 3, 'Buzz' for multiples of 5, "
    "'FizzBuzz' for multiples of both and str(n) otherwise; print it for 1 to 15."
)
FIZZBUZZ_TESTS = (
    "assert fizzbuzz(3) == 'Fizz'\n"
    "assert fizzbuzz(5) == 'Buzz'\n"
    "assert fizzbuzz(15) == 'FizzBuzz'\n"
    "assert fizzbuzz(7) == '7'\n"
    "print('all tests passed')\n"
)
IMAGE_TASK = (
    "Write a program that prints the pattern in the image as text: '#' for black, '.' for white."
)


TRACE_READS = 10
TRACE_SETTLE_S = 0.5


def say(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def run_demo() -> int:
    script = Path(os.environ.get("AGENTLOBBY_MODEL_SCRIPT") or DEMO_SCRIPT)
    started = time.monotonic()
    stack = Stack(
        port_base=0,
        project="agentlobby-demo",
        model_script=script,
        progress=lambda m: print(f"agentlobby: {m}", file=sys.stderr, flush=True),
        trace=True,
    )
    try:
        info = stack.start()
        print(f"agentlobby: stack ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
        page_address(info.user_url, info.api_token)
        user = UserClient(info.user_url, info.api_token)

        say("lobby 'chat': the user says hello, the echo agent answers")
        posted = user.post("chat", "Hello, lobby!")
        follow_conversation(user, info.project, posted.conversation_id, 20.0, quiet_s=2.0)

        say("lobby 'coding': a task with tests (round 1 fails, round 2 passes)")
        posted = user.post("coding", FIZZBUZZ_TASK, tests=FIZZBUZZ_TESTS)
        status = follow_conversation(
            user, info.project, posted.conversation_id, TASK_TIMEOUT_S, show_final_code=False
        )
        summary(user, posted.conversation_id)

        say("lobby 'coding': a task with an image, through the vision agent")
        image = {
            "mime_type": "image/png",
            "data_base64": base64.b64encode(IMAGE.read_bytes()).decode(),
        }
        posted = user.post("coding", IMAGE_TASK, image=image)
        status = max(
            status,
            follow_conversation(
                user, info.project, posted.conversation_id, TASK_TIMEOUT_S, show_final_code=False
            ),
        )
        summary(user, posted.conversation_id)
        show_trace(user, posted.conversation_id)
        hold_for_the_page(info.user_url)
        if stack.keep_logs:
            print(f"\nlogs of every process: {stack.log_dir}", file=sys.stderr)
        else:
            print(
                "\n(the logs go with the stack; AGENTLOBBY_KEEP_LOGS=1 keeps them)", file=sys.stderr
            )
        return status
    except KeyboardInterrupt:
        return 130
    finally:
        print("agentlobby: stopping the stack", file=sys.stderr, flush=True)
        stack.stop()


def page_address(user_url: str, api_token: str) -> None:
    """Where to watch the demo in a browser, and the token the page asks for once."""
    print(
        f"agentlobby: watch it live on the page: {user_url}/ (API token: {api_token})",
        file=sys.stderr,
        flush=True,
    )


def hold_for_the_page(user_url: str) -> None:
    """At a terminal, keep the stack (and the page) up until Enter; elsewhere, go on."""
    if not sys.stdin.isatty():
        return
    print(
        f"\nagentlobby: the page stays up at {user_url}/; press Enter (or Ctrl-C) to stop",
        file=sys.stderr,
        flush=True,
    )
    with contextlib.suppress(EOFError):
        input()


def summary(user: UserClient, conversation_id: str) -> None:
    state = user.conversation(conversation_id)
    print(
        f"--- {state.status}: {state.rounds} round(s), {state.usage.total_tokens} tokens, "
        f"{usd(state.cost.total_usd)}, {len(state.messages)} messages",
        flush=True,
    )


def show_trace(user: UserClient, conversation_id: str) -> None:
    """The last task's trace, as `agentlobby trace` prints it (docs/observability.md). Each
    function sends its spans as it answers: read until two reads agree."""
    say("the last task's trace: every delivery, model call and sandbox run")
    seen = -1
    for _ in range(TRACE_READS):
        view = user.trace(conversation_id)
        if len(view.spans) == seen:
            break
        seen = len(view.spans)
        time.sleep(TRACE_SETTLE_S)
    for line in tree_lines(view):
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(run_demo())
