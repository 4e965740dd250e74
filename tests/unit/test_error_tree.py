"""The one error tree: every error is exported, has one root, and sits on the branch it says."""

from __future__ import annotations

import inspect

from agentlobby import errors


def test_all_lists_every_error_and_nothing_else() -> None:
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    assert set(errors.__all__) == defined


def test_every_error_has_the_one_root_and_one_branch() -> None:
    branches = (errors.PermanentError, errors.TransientError, errors.ConfigError)
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AgentlobbyError), name
        if cls is errors.AgentlobbyError or cls in branches:
            continue
        assert sum(issubclass(cls, branch) for branch in branches) == 1, name


def test_the_docstring_draws_every_error() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, f"{name} is missing from the tree in errors.py's docstring"
