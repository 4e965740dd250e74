"""The page's files as the user trigger serves them, with no I/O: what is served, what is not,
and that every file the page loads is one the trigger has (and the package installs)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from typing import Any

import pytest

from agentlobby.api import overview, page, posting, routes
from agentlobby.api.raw import RawAnswer
from agentlobby.config import Settings, load_settings
from tests.support.paths import REPO

TOKEN = "s3cret-token"


@pytest.fixture
def config() -> Settings:
    return load_settings({"AGENTLOBBY_API_TOKEN": TOKEN, "AGENTLOBBY_PROJECT": "no-io-here"})


@pytest.fixture(autouse=True)
def no_backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"reached a backend with {args!r}: the request was not refused")

    for module in (posting, overview):
        monkeypatch.setattr(module, "Registry", refuse)
        monkeypatch.setattr(module, "Conversations", refuse)
    monkeypatch.setattr(page, "conversation_events", refuse)
    monkeypatch.setattr(page, "list_events", refuse)
    yield


def test_the_root_is_the_page_without_a_token(config: Settings) -> None:
    answer = routes.handle_request("GET", "/", {}, b"", config)
    assert isinstance(answer, RawAnswer)
    assert answer.body == (page.FOLDER / "index.html").read_bytes()
    assert answer.content_type.startswith("text/html")
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_what_the_page_loads_is_served(config: Settings) -> None:
    """Every script, style and module import of the page names a file the trigger serves."""
    index = (page.FOLDER / "index.html").read_text()
    loaded = re.findall(r'(?:src|href)="(/page/[^"]+)"', index)
    assert "/page/app.js" in loaded
    for script in ("app.js", "api.js"):
        source = (page.FOLDER / script).read_text()
        loaded += [
            "/page/" + name.removeprefix("./") for name in re.findall(r'from "([^"]+)"', source)
        ]
    assert len(loaded) >= 7, loaded
    for path in loaded:
        answer = routes.handle_request("GET", path, {}, b"", config)
        assert isinstance(answer, RawAnswer), (path, answer)


def test_the_package_installs_every_page_file() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["agentlobby.api"]
    for path in page.FOLDER.rglob("*"):
        if path.is_file():
            relative = path.relative_to(page.FOLDER.parent).as_posix()
            assert any(fnmatch(relative, p) for p in patterns), relative


def test_each_vendored_library_comes_with_its_licence_and_version() -> None:
    vendor = page.FOLDER / "vendor"
    versions = (vendor / "VERSIONS.txt").read_text()
    for library, licence in (
        ("htm-preact.js", "htm-LICENSE.txt"),
        ("highlight-core.js", "highlight-LICENSE.txt"),
    ):
        assert (vendor / library).is_file() and (vendor / licence).is_file()
        assert library in versions and licence in versions
    assert "preact-LICENSE.txt" in versions and (vendor / "preact-LICENSE.txt").is_file()
    makefile = (REPO / "Makefile").read_text()
    for name, version in re.findall(r"^(HTM|HLJS)_VERSION := (\S+)$", makefile, re.M):
        assert f" {version}:" in versions, (name, version)


@pytest.mark.parametrize(
    "path",
    ["/page/", "/page/../page.py", "/page/vendor/../../routes.py", "/page/raw.py", "/page/x.js"],
)
def test_only_the_page_files_are_served(config: Settings, path: str) -> None:
    answer = routes.handle_request("GET", path, {}, b"", config)
    assert not isinstance(answer, RawAnswer)
    assert answer[1] == 404 and "the page is at /" in answer[0]["error"]


@pytest.mark.parametrize(
    "path", ["/lobbies", "/conversations", "/events", "/conversations/abc/events"]
)
@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}])
def test_the_page_data_needs_the_token(
    config: Settings, path: str, headers: dict[str, str]
) -> None:
    assert routes.handle_request("GET", path, headers, b"", config) == (
        {"error": "missing or wrong bearer token: send 'Authorization: Bearer <token>'"},
        401,
    )
