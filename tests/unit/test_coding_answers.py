"""What the coding agents make of a model's answer, and the program the interpreter runs: pure
functions, no model and no stack."""

from __future__ import annotations

import re

import pytest

from agentlobby.agents.checker import parse_judgement
from agentlobby.agents.coding import extract_code
from agentlobby.agents.interpreter import TESTS_SEPARATOR, program
from tests.support.coding import ADD_TESTS, BAD_ADD, GOOD_ADD


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("```python\nprint(1)\n```", "print(1)\n"),
        ("Here it is:\n```py\nx = 1\nprint(x)\n```\nDone.", "x = 1\nprint(x)\n"),
        ("```python3\nprint(3)```", "print(3)\n"),
        ("```\nprint('untagged')\n```", "print('untagged')\n"),
        ("```Python\nprint('capital')\n```", "print('capital')\n"),
        ("```python\nfirst()\n```\nor\n```python\nsecond()\n```", "first()\n"),
        ("Run it with:\n```bash\npython3 main.py\n```\n```python\nmain()\n```", "main()\n"),
        ("```python\n\n\nindented = {\n    'a': 1,\n}\n\n```", "indented = {\n    'a': 1,\n}\n"),
    ],
)
def test_extract_code_takes_the_first_python_block(answer: str, code: str) -> None:
    assert extract_code(answer) == code


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("", "the answer was empty"),
        ("  \n", "the answer was empty"),
        ("def f(): pass", "no ```python code block"),
        ("```bash\nls\n```", "no ```python code block"),
        ("```python\n\n```", "the code block was empty"),
        ("```python\n   \n```", "the code block was empty"),
    ],
)
def test_extract_code_says_what_was_missing(answer: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        extract_code(answer)


@pytest.mark.parametrize(
    ("answer", "judgement"),
    [
        ('{"passed": true, "feedback": "fine"}', (True, "fine")),
        ('{"passed": false}', (False, "")),
        ('```json\n{"passed": false, "feedback": "off by one"}\n```', (False, "off by one")),
        ('{"passed": true, "feedback": "a {nested} brace"}', (True, "a {nested} brace")),
        ('Verdict: {"passed": true, "feedback": "ok"}. Use {x} next time.', (True, "ok")),
        ('{"passed": true, "feedback": "ok", "details": {"lines": 3}}', (True, "ok")),
    ],
)
def test_parse_judgement_reads_the_verdict(answer: str, judgement: tuple[bool, str]) -> None:
    assert parse_judgement(answer) == judgement


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("looks good to me", "no JSON object"),
        ('{"passed": tru}', "did not parse"),
        ('{"passed": "yes", "feedback": "ok"}', 'boolean "passed"'),
        ('{"feedback": "ok"}', 'boolean "passed"'),
        ('{"passed": true, "feedback": 3}', '"feedback" must be a string'),
    ],
)
def test_parse_judgement_says_what_was_wrong(answer: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_judgement(answer)


def test_program_is_the_code_alone_without_tests() -> None:
    assert program("print(1)\n", None) == "print(1)\n"
    assert program("print(1)\n", "") == "print(1)\n"


def test_program_appends_the_tests_after_the_code() -> None:
    assert program("def f():\n    return 1\n\n\n", "assert f() == 1\n") == (
        "def f():\n    return 1" + TESTS_SEPARATOR + "assert f() == 1\n"
    )


def test_program_runs_the_tests_against_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(program(GOOD_ADD, ADD_TESTS), "program.py", "exec"), {})
    assert capsys.readouterr().out == "tests passed\n"
    with pytest.raises(AssertionError):
        exec(compile(program(BAD_ADD, ADD_TESTS), "program.py", "exec"), {})
