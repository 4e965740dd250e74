"""The coding loop, end to end: vision, coder, interpreter and checker on the real emulators.

Tasks are posted to the `coding` lobby over HTTP and read back from GET /conversations/{id},
as a user would. The agents' model is the offline model server, reached through the real
`openai` client; each test plays its own script, keyed on a token only its task contains, and
checks what the agents asked through the server's /_stats. The agents' pure functions are
checked in tests/unit/test_coding_answers.py.
"""

from __future__ import annotations

import base64
import concurrent.futures
import re

from agentlobby.agents.coding import CODE_CORRECTION
from agentlobby.config import load_settings
from local_emulator.stack import Stack
from tests.support.coding import (
    ADD_TESTS,
    BAD_ADD,
    FAILED_THEN_PASSED,
    FEEDBACK,
    GOOD_ADD,
    IMAGE,
    PASSED_ROUND_ONE,
    add_task,
    assert_usage_adds_up,
    finished,
    handled_count,
    kinds,
    named_stats,
    of_kind,
    play,
    python_block,
    reply,
    requests_of,
    run_add_task,
    run_task,
    settle,
    token,
    two_round_rules,
    usage,
)
from tests.support.user import JsonUser


def test_passes_in_round_one_and_the_checker_asks_no_model(stack: Stack, user: JsonUser) -> None:
    tok = token()
    posted, view = run_add_task(
        stack,
        user,
        tok,
        {"agent": "coder", "match": tok, "replies": [reply(python_block(GOOD_ADD), 40, 12)]},
    )

    assert view["status"] == "succeeded"
    assert view["reason"] is None
    assert kinds(view) == PASSED_ROUND_ONE
    assert view["rounds"] == 1
    assert view["final_code"] == GOOD_ADD
    task, spec, code, execution, verdict, result = view["messages"]
    assert task["id"] == posted["message_id"]
    assert spec["text"] == add_task(tok)  # no image: the task is the specification
    assert code["content"]["round"] == 1
    assert execution["content"]["code_id"] == code["id"]
    assert execution["content"]["exit_code"] == 0
    assert execution["content"]["tests_passed"] is True
    assert "tests passed" in execution["content"]["stdout"]
    assert verdict["content"]["passed"] is True
    assert verdict["content"]["final"] is True
    assert result["content"]["status"] == "succeeded"
    assert result["content"]["rounds"] == 1
    assert result["content"]["code"] == GOOD_ADD
    assert "tests passed" in result["content"]["output"]
    # Only the coder asked the model; every other message cost nothing.
    assert [m["usage"] for m in view["messages"]] == [None, None, usage(40, 12), None, None, None]
    assert view["usage"] == {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
    assert_usage_adds_up(view)

    stats = named_stats(stack)
    assert len(requests_of(stats, "coder")) == 1
    assert requests_of(stats, "checker") == []  # the tests decided
    assert requests_of(stats, "vision") == []  # no image, no model call
    assert stats["unused_replies"] == []


def test_failed_tests_get_model_feedback_and_round_two_passes(stack: Stack, user: JsonUser) -> None:
    tok = token()
    feedback = FEEDBACK
    _, view = run_add_task(stack, user, tok, *two_round_rules(tok))

    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == FAILED_THEN_PASSED
    assert view["rounds"] == 2
    assert view["final_code"] == GOOD_ADD
    code1, code2 = of_kind(view, "code")
    run1, run2 = of_kind(view, "execution-result")
    verdict1, verdict2 = of_kind(view, "verdict")
    assert (code1["content"]["source"], code2["content"]["source"]) == (BAD_ADD, GOOD_ADD)
    assert (code1["content"]["round"], code2["content"]["round"]) == (1, 2)
    assert run1["content"]["tests_passed"] is False
    assert run1["content"]["exit_code"] != 0
    assert "AssertionError" in run1["content"]["stderr"]
    assert run2["content"]["tests_passed"] is True
    assert run2["content"]["code_id"] == code2["id"]
    assert verdict1["content"] | {"text": None} == {
        "kind": "verdict",
        "round": 1,
        "passed": False,
        "feedback": feedback,
        "final": False,
        "text": None,
    }
    assert (verdict2["content"]["passed"], verdict2["content"]["final"]) == (True, True)
    assert of_kind(view, "result")[0]["content"]["rounds"] == 2
    assert code1["usage"] == usage(40, 12)
    assert verdict1["usage"] == usage(70, 9)
    assert code2["usage"] == usage(90, 12)
    assert verdict2["usage"] is None
    assert view["usage"]["total_tokens"] == 40 + 12 + 70 + 9 + 90 + 12
    assert_usage_adds_up(view)

    stats = named_stats(stack)
    coder = requests_of(stats, "coder")
    assert len(coder) == 2
    assert feedback not in coder[0]["last_user_text"]
    assert "Round 1 failed" in coder[1]["last_user_text"]
    assert f"Reviewer feedback: {feedback}" in coder[1]["last_user_text"]
    assert "AssertionError" in coder[1]["last_user_text"]  # the execution result is in it too
    checker = requests_of(stats, "checker")
    assert len(checker) == 1
    assert "return a - b" in checker[0]["last_user_text"]
    assert stats["unused_replies"] == []


def test_rounds_exhausted_fails_and_no_third_round_starts(stack: Stack, user: JsonUser) -> None:
    tok = token()
    posted, view = run_add_task(
        stack,
        user,
        tok,
        # A third code reply is there to be taken, should the loop wrongly go on.
        {"agent": "coder", "match": tok, "replies": [python_block(BAD_ADD)] * 3},
        {"agent": "checker", "match": tok, "replies": ["still subtracting", "still wrong"]},
        max_rounds=2,
    )

    assert view["status"] == "failed"
    assert "2 round(s)" in view["reason"]
    assert "still wrong" in view["reason"]  # the last feedback tells the user what was wrong
    assert kinds(view) == [*FAILED_THEN_PASSED[:-1], ("checker", "result")]
    last_verdict = of_kind(view, "verdict")[-1]["content"]
    assert (last_verdict["passed"], last_verdict["final"]) == (False, True)
    result = of_kind(view, "result")[0]["content"]
    assert (result["status"], result["rounds"], result["reason"]) == ("failed", 2, view["reason"])
    assert result["code"] == BAD_ADD
    assert_usage_adds_up(view)

    settle()
    later = user.conversation(posted["conversation_id"])
    assert len(of_kind(later, "code")) == 2
    assert later["rounds"] == 2
    assert len(later["messages"]) == len(view["messages"])
    stats = named_stats(stack)
    assert len(requests_of(stats, "coder")) == 2
    assert len(requests_of(stats, "checker")) == 2


def test_spent_budget_stops_before_the_checker_asks_its_model(stack: Stack, user: JsonUser) -> None:
    tok = token()
    _, view = run_add_task(
        stack,
        user,
        tok,
        {"agent": "coder", "match": tok, "replies": [reply(python_block(BAD_ADD), 70, 50)]},
        {"agent": "checker", "match": tok, "replies": ["feedback nobody should ask for"]},
        token_budget=100,
    )

    assert view["status"] == "failed"
    assert "token budget" in view["reason"]
    assert "120 tokens used of 100" in view["reason"]
    assert kinds(view) == [*PASSED_ROUND_ONE[:4], ("checker", "result")]
    result = of_kind(view, "result")[0]
    assert result["content"]["status"] == "failed"
    assert result["content"]["reason"] == view["reason"]
    assert view["usage"]["total_tokens"] == 120
    assert_usage_adds_up(view)
    assert requests_of(named_stats(stack), "checker") == []


def test_spent_budget_stops_the_coder_before_round_two(stack: Stack, user: JsonUser) -> None:
    tok = token()
    _, view = run_add_task(
        stack,
        user,
        tok,
        {"agent": "coder", "match": tok, "replies": [reply(python_block(BAD_ADD), 50, 10)] * 2},
        {"agent": "checker", "match": tok, "replies": [reply("use a + b", 80, 20)]},
        token_budget=150,
    )

    assert view["status"] == "failed"
    assert "token budget spent: 160 tokens used of 150" in view["reason"]
    assert kinds(view) == [*PASSED_ROUND_ONE[:5], ("coder", "result")]
    assert view["rounds"] == 1
    assert_usage_adds_up(view)
    assert len(requests_of(named_stats(stack), "coder")) == 1


def test_malformed_answers_are_regenerated_and_never_published(
    stack: Stack, user: JsonUser
) -> None:
    tok = token()
    posted, view = run_add_task(
        stack,
        user,
        tok,
        {
            "agent": "coder",
            "match": tok,
            "replies": [
                reply("I would write a function that adds its two arguments.", 10, 1),
                reply("```python\n\n```", 10, 2),
                reply(python_block(GOOD_ADD), 10, 3),
            ],
        },
    )

    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    (code,) = of_kind(view, "code")
    assert code["content"]["source"] == GOOD_ADD
    assert code["content"]["round"] == 1
    assert code["usage"] == usage(30, 6)  # the unusable tries cost tokens too
    assert_usage_adds_up(view)
    # The interpreter was handed exactly one code message: the good one.
    assert handled_count(stack, "interpreter", "code", posted["conversation_id"]) == 1

    coder = requests_of(named_stats(stack), "coder")
    assert len(coder) == 3
    assert coder[1]["last_user_text"].startswith(CODE_CORRECTION)
    assert "no ```python code block" in coder[1]["last_user_text"]
    assert coder[2]["last_user_text"].startswith(CODE_CORRECTION)
    assert "code block was empty" in coder[2]["last_user_text"]


def test_a_coder_that_never_writes_code_fails_after_bounded_tries(
    stack: Stack, user: JsonUser
) -> None:
    tok = token()
    posted, view = run_add_task(
        stack,
        user,
        tok,
        {"agent": "coder", "match": tok, "replies": [reply("No code today.", 10, 1)] * 6},
    )

    assert view["status"] == "failed"
    assert "coder's model gave no usable answer in 3 tries" in view["reason"]
    assert "no ```python code block" in view["reason"]
    assert kinds(view) == [("user", "task"), ("vision", "spec"), ("coder", "result")]
    assert view["rounds"] == 0
    assert view["final_code"] is None
    result = of_kind(view, "result")[0]
    assert result["content"]["status"] == "failed"
    assert result["usage"] == usage(30, 3)
    assert_usage_adds_up(view)

    settle()
    assert len(user.conversation(posted["conversation_id"])["messages"]) == 3
    assert len(requests_of(named_stats(stack), "coder")) == 3


def test_rate_limit_and_server_error_are_retried_by_the_client(
    stack: Stack, user: JsonUser
) -> None:
    tok = token()
    _, view = run_add_task(
        stack,
        user,
        tok,
        {
            "agent": "coder",
            "match": tok,
            "replies": [{"status": 429}, {"status": 500}, reply(python_block(GOOD_ADD), 20, 5)],
        },
    )

    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    assert of_kind(view, "code")[0]["usage"] == usage(20, 5)
    assert view["dead_letters"] == []
    assert [r["status"] for r in requests_of(named_stats(stack), "coder")] == [429, 500, 200]


def test_a_model_down_past_the_client_retries_is_tried_again_on_redelivery(
    stack: Stack, user: JsonUser
) -> None:
    attempts = load_settings().model_for("coder").max_retries + 1
    tok = token()
    _, view = run_add_task(
        stack,
        user,
        tok,
        {
            "agent": "coder",
            "match": tok,
            "replies": [{"status": 429}] * attempts + [reply(python_block(GOOD_ADD), 20, 5)],
        },
    )

    # The client gave up, the delivery failed transiently, and Pub/Sub's redelivery succeeded.
    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    assert view["dead_letters"] == []
    statuses = [r["status"] for r in requests_of(named_stats(stack), "coder")]
    assert statuses == [429] * attempts + [200]


def test_vision_describes_the_image_and_the_spec_carries_it(stack: Stack, user: JsonUser) -> None:
    tok = token()
    seen = "A 4 by 4 checkerboard, top-left cell black. Print '#' for black and '.' for white."
    board = "for row in range(4):\n    print(''.join('#.'[(row + col) % 2] for col in range(4)))\n"
    task = f"Print the pattern in the image as text. [{tok}]"
    image = {"mime_type": "image/png", "data_base64": base64.b64encode(IMAGE.read_bytes()).decode()}
    _, view = run_task(
        stack,
        user,
        task,
        {"agent": "vision", "match": tok, "replies": [reply(seen, 300, 40)]},
        {
            "agent": "coder",
            "match": rf"(?s){tok}.*From the image:\n{re.escape(seen)}",
            "replies": [reply(python_block(board), 120, 30)],
        },
        {
            "agent": "checker",
            "match": tok,
            "replies": [reply('{"passed": true, "feedback": "prints the board"}', 150, 10)],
        },
        image=image,
    )

    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    spec = of_kind(view, "spec")[0]
    assert spec["text"] == f"{task}\n\nFrom the image:\n{seen}"
    assert spec["usage"] == usage(300, 40)
    assert of_kind(view, "code")[0]["usage"] == usage(120, 30)
    assert of_kind(view, "verdict")[0]["usage"] == usage(150, 10)
    assert of_kind(view, "result")[0]["content"]["output"] == "#.#.\n.#.#\n#.#.\n.#.#\n"
    assert view["usage"]["total_tokens"] == 300 + 40 + 120 + 30 + 150 + 10
    assert_usage_adds_up(view)

    stats = named_stats(stack)
    (vision,) = requests_of(stats, "vision")
    assert vision["has_image"] is True
    assert task in vision["last_user_text"]
    assert [r["has_image"] for r in requests_of(stats, "coder")] == [False]
    assert set(stats["agents"]) == {"vision", "coder", "checker"}
    assert stats["unused_replies"] == []


def test_without_tests_the_checker_model_judges_a_pass(stack: Stack, user: JsonUser) -> None:
    tok = token()
    code = GOOD_ADD + "\nprint(add(2, 3))\n"
    judgement = 'Verdict:\n```json\n{"passed": true, "feedback": "prints 5 as asked"}\n```'
    _, view = run_task(
        stack,
        user,
        f"Write add(a, b) and print add(2, 3). [{tok}]",
        {"agent": "coder", "match": tok, "replies": [python_block(code)]},
        {
            "agent": "checker",
            "match": rf"(?s){tok}.*stdout:\n5\n",
            "replies": [reply(judgement, 50, 8)],
        },
        max_rounds=3,
    )

    assert view["status"] == "succeeded", view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    execution = of_kind(view, "execution-result")[0]["content"]
    assert execution["tests_passed"] is None  # no tests: the exit code alone decides nothing
    verdict = of_kind(view, "verdict")[0]
    assert verdict["content"]["passed"] is True
    assert verdict["content"]["feedback"] == "prints 5 as asked"
    assert verdict["usage"] == usage(50, 8)
    assert_usage_adds_up(view)
    assert len(requests_of(named_stats(stack), "checker")) == 1


def test_without_tests_a_failing_judgement_in_the_last_round_fails(
    stack: Stack, user: JsonUser
) -> None:
    tok = token()
    _, view = run_task(
        stack,
        user,
        f"Write add(a, b) and print add(2, 3). [{tok}]",
        {"agent": "coder", "match": tok, "replies": [python_block(GOOD_ADD)] * 2},
        {
            "agent": "checker",
            "match": tok,
            "replies": ['{"passed": false, "feedback": "it prints nothing"}'],
        },
        max_rounds=1,
    )

    assert view["status"] == "failed"
    assert "1 round(s)" in view["reason"]
    assert "it prints nothing" in view["reason"]
    assert kinds(view) == PASSED_ROUND_ONE
    verdict = of_kind(view, "verdict")[0]["content"]
    assert (verdict["passed"], verdict["final"]) == (False, True)
    assert of_kind(view, "result")[0]["content"]["status"] == "failed"
    settle()
    # a final verdict starts no second round
    assert len(requests_of(named_stats(stack), "coder")) == 1


def test_coder_model_calls_never_exceed_its_slots(stack: Stack, user: JsonUser) -> None:
    limit = load_settings().model_for("coder").concurrency
    tasks = limit * 2
    tok = token()
    slow = {"content": python_block(GOOD_ADD), "delay_ms": 1500}
    play(stack, {"agent": "coder", "match": tok, "replies": [slow] * tasks})

    with concurrent.futures.ThreadPoolExecutor(tasks) as pool:
        posts = list(
            pool.map(
                lambda i: user.post("coding", f"{add_task(tok)} (task {i})", tests=ADD_TESTS),
                range(tasks),
            )
        )
    views = [finished(user, p["conversation_id"]) for p in posts]

    assert [v["status"] for v in views] == ["succeeded"] * tasks
    assert all(kinds(v) == PASSED_ROUND_ONE for v in views)
    stats = named_stats(stack)["agents"]["coder"]
    assert stats["requests"] == tasks
    assert stats["max_in_flight"] == limit  # never more, and the slots did run in parallel
