"""The default script of `agentlobby up` without a key: generic tasks get sensible answers.

Requests are the agents' own prompts around a task; the coder's answers are run with typical
tests (in-process: they are this repository's own code), and `up` plays the script on a loop.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from agentlobby.agents.checker import JUDGE_PROMPT, parse_judgement
from agentlobby.agents.coder import SYSTEM_PROMPT as CODER_PROMPT
from agentlobby.agents.coding import extract_code
from agentlobby.agents.vision import SYSTEM_PROMPT as VISION_PROMPT
from agentlobby_cli.up import DEFAULT_SCRIPT, LOOP_TIMES, looped
from local_emulator.model_server.script import ScriptPlayer, load_script_file

FIZZBUZZ_TESTS = "assert fizzbuzz(3) == 'Fizz'\nassert fizzbuzz(15) == 'FizzBuzz'\n"


def answer(player: ScriptPlayer, agent: str, text: str) -> str:
    picked = player.next_reply(agent, text)
    assert picked is not None, (agent, text)
    content = picked[1].content
    assert content is not None
    return content


def run(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "main.py", "exec"), {"__name__": "__main__"})
    return out.getvalue()


@pytest.fixture
def player() -> ScriptPlayer:
    return ScriptPlayer(looped(DEFAULT_SCRIPT))


@pytest.mark.parametrize(
    ("task", "tests"),
    [
        ("Write fizzbuzz(n) and print it for 1 to 15.", FIZZBUZZ_TESTS),
        ("Print the first Fibonacci numbers.", "assert fibonacci(10) == 55\n"),
        ("Compute a factorial.", "assert factorial(5) == 120\n"),
        ("List the primes below 50.", "assert is_prime(47) and not is_prime(49)\n"),
        ("Is it a palindrome?", "assert is_palindrome('Racecar') and not is_palindrome('ab')\n"),
        ("Reverse a string.", "assert reverse_string('abc') == 'cba'\n"),
        ("Say hello, world.", ""),
        ("Write a program that sorts my holiday photos by colour.", ""),
    ],
)
def test_the_coder_answers_a_small_program_that_runs(
    player: ScriptPlayer, task: str, tests: str
) -> None:
    prompt = f"{CODER_PROMPT}\nSpecification:\n{task}"
    if tests:
        prompt += f"\n\nThese tests must pass when appended to your program:\n{tests}"
    code = extract_code(answer(player, "coder", prompt))
    assert run(code + tests).strip()  # it prints something, and the tests pass


def test_a_second_round_after_failed_tests_is_not_misled_by_the_first_round(
    player: ScriptPlayer,
) -> None:
    """Round 2 sees round 1's code and output: a keyword there must not pick another program."""
    first = answer(player, "coder", f"{CODER_PROMPT}\nSpecification:\nWrite add(a, b).")
    second = answer(
        player,
        "coder",
        f"{CODER_PROMPT}\nSpecification:\nWrite add(a, b).\n{first}\n"
        f"stdout:\n{run(extract_code(first))}\nRound 1 failed.",
    )
    assert second == first


@pytest.mark.parametrize(("exit_code", "passed"), [(0, True), (1, False), (None, False)])
def test_the_checker_passes_a_program_that_ran_cleanly(
    player: ScriptPlayer, exit_code: int | None, passed: bool
) -> None:
    stopped = "no" if exit_code is not None else "timeout"
    text = (
        f"{JUDGE_PROMPT}\nSpecification:\nanything\n\nCode:\n```python\nprint(1)```\n\n"
        f"Exit code: {exit_code}; stopped by the sandbox: {stopped}\nstdout:\n1\nstderr:\n"
    )
    verdict, feedback = parse_judgement(answer(player, "checker", text))
    assert verdict is passed
    assert feedback


def test_the_checker_gives_feedback_on_failed_tests_and_vision_restates(
    player: ScriptPlayer,
) -> None:
    assert "tests failed" in answer(player, "checker", "You review a Python program that failed.")
    assert answer(player, "vision", f"{VISION_PROMPT}\nWhat does the chart show?").strip()


def test_up_plays_it_on_a_loop() -> None:
    script = load_script_file(DEFAULT_SCRIPT)
    player = ScriptPlayer(looped(DEFAULT_SCRIPT))
    answers = {answer(player, "coder", "fizzbuzz") for _ in range(5)}
    assert len(answers) == 1
    fizzbuzz = next(i for i, rule in enumerate(script.rules) if "fizz" in rule.match.pattern)
    left = {entry["rule"]: entry["left"] for entry in player.unused()}
    assert left[fizzbuzz] == LOOP_TIMES * len(script.rules[fizzbuzz].replies) - 5
