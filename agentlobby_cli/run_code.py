"""`agentlobby run-code FILE`: run one Python file in the sandbox and print the result as JSON.

The main CLI hands its `run-code` arguments to main(); `python -m agentlobby_cli.run_code` works
too. Only the standard library and the sandbox are imported, so the command costs little more
than the sandboxed run itself. Exit status: 0 whenever the sandbox ran (whatever the code did:
read exit_code in the JSON), 2 for a usage mistake, 1 when no sandbox could be set up here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable

from agentlobby.errors import ConfigError
from agentlobby.sandbox.runner import SandboxLimits, SandboxUnavailable, run_python
from agentlobby_cli.arguments import Parser, shown

__all__ = ["main"]

DESCRIPTION = """\
Run FILE with python3 in a throwaway sandbox (no network, no host files or environment,
limits on time, memory, processes, file size and output) and print one JSON object:
exit_code, stdout, stderr, timed_out, duration_ms, truncated, reason, isolation.
Exits 0 whenever the sandbox ran, whatever the code did."""


def _positive(kind: type[float] | type[int]) -> Callable[[str], float]:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{shown(text)} is not a number: pass a positive {kind.__name__}, e.g. 5"
            ) from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{shown(text)} must be a positive {kind.__name__}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _parser() -> Parser:
    defaults = SandboxLimits()
    parser = Parser(
        prog="agentlobby run-code",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the Python file to run (as main.py)")
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive(float),
        default=defaults.timeout_s,
        help=f"wall-clock limit (default {defaults.timeout_s:g}); CPU time gets the same",
    )
    parser.add_argument(
        "--memory-mb",
        metavar="N",
        type=_positive(int),
        default=defaults.memory_mb,
        help=f"address-space limit in MiB (default {defaults.memory_mb})",
    )
    parser.add_argument(
        "--isolation",
        choices=list(LEVELS),
        default="auto",
        metavar="LEVEL",
        help="demand one isolation level instead of the strongest available (default auto): "
        "namespaces+uid, userns, uid+rlimits or rlimits-only, the names a result reports "
        "and docs/sandbox.md uses; `namespaces` and `rlimits` are short for namespaces+uid "
        "and for whichever rlimits level the user may have",
    )
    return parser


TYPE_CHECKING = False  # importing typing would cost the command's start (see sandbox/runner.py)
if TYPE_CHECKING:
    from typing import Literal

# The names results and docs/sandbox.md use, and the runner's level that demands each.
LEVELS: dict[str, Literal["auto", "namespaces", "userns", "rlimits"]] = {
    "auto": "auto",
    "namespaces+uid": "namespaces",
    "userns": "userns",
    "uid+rlimits": "rlimits",
    "rlimits-only": "rlimits",
    "namespaces": "namespaces",
    "rlimits": "rlimits",
}


def main(argv: list[str]) -> int:
    """Parse argv (without the program name), run the file, print the JSON result."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with open(args.file, encoding="utf-8") as f:
            source = f.read()
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a NUL in the name
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        if isinstance(exc, ValueError) and "\0" in args.file:
            reason = "a file name has no NUL character"
        parser.error(f"cannot read FILE {shown(args.file)}: {reason}; pass a readable Python file")
    try:
        limits = SandboxLimits(timeout_s=args.timeout, memory_mb=args.memory_mb)
        # One run per process: a warm spare helper would only be started to be killed at exit.
        level = LEVELS[args.isolation]
        result = run_python(source, limits=limits, isolation=level, warm=False)
    except SandboxUnavailable as exc:  # a ConfigError too, but the machine's, not the user's
        print(f"agentlobby run-code: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        parser.error(str(exc))
    json.dump(result.to_json_dict(), sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
