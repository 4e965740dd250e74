"""How big each scenario is: the full run, and the short one CI can afford (about 3 minutes on
two cores). One place, so the two modes differ only in numbers, never in what is checked."""

from __future__ import annotations

from dataclasses import dataclass

AGENTS = ("echo", "vision", "coder", "interpreter", "checker")
# The crash points, one per kind first: the short run takes the first of each kind.
MODEL_CALL = "coder during its model call"
INTERPRETER_RUN = "interpreter during a sandbox run"
SANDBOX_RUN = "sandbox during a run"
USER_POST = "user during posts"
SERVER = "server"  # "server <agent>": the agent's whole server at a random moment


@dataclass(frozen=True)
class Plan:
    name: str
    load_coding: int
    load_chats: int
    crash_points: tuple[str, ...]
    kill_agents: tuple[str, ...]  # empty: one agent picked at random
    crash_coding: int  # the small load around each crash point
    crash_chats: int
    posts_during_user_crash: int
    pause_s: float
    pause_tasks: int
    fuzz_requests: int
    final_timeout_s: float


FULL = Plan(
    name="full",
    load_coding=50,
    load_chats=50,
    crash_points=(MODEL_CALL, INTERPRETER_RUN, SANDBOX_RUN, USER_POST, SERVER),
    kill_agents=AGENTS,
    crash_coding=4,
    crash_chats=4,
    posts_during_user_crash=40,
    pause_s=30.0,
    pause_tasks=10,
    fuzz_requests=400,
    final_timeout_s=240.0,
)

SHORT = Plan(
    name="short",
    load_coding=10,
    load_chats=10,
    crash_points=(MODEL_CALL, INTERPRETER_RUN, USER_POST, SERVER),
    kill_agents=(),
    crash_coding=3,
    crash_chats=3,
    posts_during_user_crash=20,
    pause_s=10.0,
    pause_tasks=10,
    fuzz_requests=200,
    final_timeout_s=180.0,
)
