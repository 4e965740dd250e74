"""`agentlobby up`: run the local stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from local_emulator.stack import Stack
from local_emulator.stack_state import clear_state, state_dir, write_state


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_up(*, port_base: int, as_json: bool) -> int:
    script = os.environ.get("AGENTLOBBY_MODEL_SCRIPT")
    record = os.environ.get("AGENTLOBBY_MODEL_RECORD")
    if script and not Path(script).is_file():
        print(f"agentlobby up: AGENTLOBBY_MODEL_SCRIPT={script} is not a file", file=sys.stderr)
        return 2
    if script and record:
        print(
            "agentlobby up: set AGENTLOBBY_MODEL_SCRIPT (replay) or AGENTLOBBY_MODEL_RECORD "
            "(record), not both",
            file=sys.stderr,
        )
        return 2

    def progress(message: str) -> None:
        print(f"agentlobby: {message}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, _raise_interrupt)
    stack = Stack(
        port_base=port_base,
        project=os.environ.get("AGENTLOBBY_PROJECT") or "agentlobby-local",
        api_token=os.environ.get("AGENTLOBBY_API_TOKEN"),
        model_script=Path(script) if script else None,
        record_model_to=Path(record) if record else None,
        log_dir=state_dir() / "logs",
        progress=progress,
    )
    try:
        info = stack.start()
        write_state(info)
        if as_json:
            print(info.to_json(), flush=True)
        else:
            progress(f"ready: user agent at {info.user_url}, project {info.project}")
            progress(f"logs in {info.log_dir}; try `agentlobby chat chat` in another terminal")
            progress("Ctrl-C stops everything")
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"agentlobby up: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        progress("stopping")
        stack.stop()
        clear_state(os.getpid())
    return 0
