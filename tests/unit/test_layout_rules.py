"""The layout is the architecture: what each part may import is checked, not hoped for.

- functions/ (the deploy root) never imports the command line or the local stack;
- only store/ imports Google's SDKs, so every SDK error is translated at one boundary (and
  a2a_edge/wire.py imports protobuf's JSON codec, nothing else of Google's);
- agents reach the store, the sandbox and their settings only through their context;
- no module imports another module's private names;
- the roster of functions is one: main.py's entry points, infra/functions.conf and the agents'
  own names agree.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from local_emulator.roster import agent_spec, discover_targets
from tests.support.paths import FUNCTIONS_DIR, MAIN_PY, REPO

LIBRARY = FUNCTIONS_DIR / "agentlobby"

BLOCK_AND_IMPORT_ALL = r"""
import importlib, pkgutil, sys
from importlib.abc import MetaPathFinder

class Refuse(MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("agentlobby_cli", "local_emulator"):
            raise ImportError(f"the deploy root imported {name}")
        return None

sys.meta_path.insert(0, Refuse())
sys.path.insert(0, sys.argv[1])
import agentlobby
names = ["main"] + [
    m.name for m in pkgutil.walk_packages(agentlobby.__path__, "agentlobby.")
]
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def library_modules() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def imported_names(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import statement of a file, at any depth."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def import_all_with_the_blocker(deploy_root: Path) -> subprocess.CompletedProcess[str]:
    """Import main.py and every agentlobby module of a deploy root, refusing the CLI and the
    local stack, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-c", BLOCK_AND_IMPORT_ALL, str(deploy_root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=deploy_root,
    )


def test_every_deployed_module_imports_without_the_cli_or_the_local_stack() -> None:
    done = import_all_with_the_blocker(FUNCTIONS_DIR)
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) > 30  # every module was really imported


def test_the_import_blocker_would_catch_a_deploy_root_that_imports_the_cli(
    tmp_path: Path,
) -> None:
    """The check above can fail: a deploy root whose main.py imports the CLI is refused."""
    (tmp_path / "main.py").write_text("import agentlobby_cli.main\n")
    (tmp_path / "agentlobby").symlink_to(LIBRARY)
    done = import_all_with_the_blocker(tmp_path)
    assert done.returncode != 0
    assert "the deploy root imported agentlobby_cli" in done.stderr


# The A2A wire's encoding is protobuf's JSON mapping: a codec, not a Cloud SDK, and one module.
PROTOBUF_CODEC = LIBRARY / "a2a_edge" / "wire.py"


def test_only_the_store_imports_googles_sdks() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {module}"
        for path in library_modules()
        if "store" not in path.relative_to(LIBRARY).parts
        for module, _names in imported_names(path)
        if module == "google" or module.startswith("google.")
        if not (path == PROTOBUF_CODEC and module.startswith("google.protobuf."))
    ]
    assert offenders == []


def test_agents_reach_the_store_sandbox_and_settings_only_through_their_context() -> None:
    forbidden = (
        "agentlobby.store",
        "agentlobby.sandbox",
        "agentlobby.config",
        "agentlobby.delivery",
    )
    offenders = [
        f"{path.name}: {module}"
        for path in sorted((LIBRARY / "agents").glob("*.py"))
        if path.name != "context.py"
        for module, _names in imported_names(path)
        if module.startswith(forbidden)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "folder",
    [LIBRARY, REPO / "agentlobby_cli", REPO / "agentlobby_testing", REPO / "local_emulator"],
    ids=lambda p: p.name,
)
def test_no_module_imports_another_modules_private_names(folder: Path) -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {module}.{name}"
        for path in sorted(folder.rglob("*.py"))
        for module, names in imported_names(path)
        if module.startswith(("agentlobby", "local_emulator"))
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert offenders == []


def deployed_functions() -> dict[str, list[str]]:
    """infra/functions.conf: entry point name -> the topics it is pushed from."""
    rows: dict[str, list[str]] = {}
    for line in (REPO / "infra" / "functions.conf").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, *_sizes, topics, _calls = line.split()
        rows[name.replace("-", "_")] = [] if topics == "-" else topics.split(",")
    return rows


def test_main_py_infra_and_the_agents_declare_one_roster() -> None:
    targets = discover_targets(MAIN_PY)
    deployed = deployed_functions()
    missing = [t.name for t in targets if t.name not in deployed]
    assert not missing, "\n".join(
        f"functions/main.py has the entry point {name} but infra/functions.conf has no row for "
        f"it: add one like\n  {name.replace('_', '-'):<13}256Mi   60s      10   1            "
        "agent        LOBBY                   -\n"
        "(LOBBY: the lobbies it joins; the file's header explains each column)"
        for name in missing
    )
    extra = sorted(set(deployed) - {t.name for t in targets})
    assert not extra, f"infra/functions.conf deploys {extra}, which functions/main.py lacks"
    for target in targets:
        if target.kind != "agent":
            continue
        spec = agent_spec(target)
        assert spec.name == target.name, f"{target.module} declares {spec.name!r}"
        assert sorted(spec.default_lobbies) == sorted(deployed[target.name]), target.name
