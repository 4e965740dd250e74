"""`agentlobby model-server`: the offline OpenAI-compatible model server, in the foreground.

The command's own front to local_emulator/model_server: its arguments are checked here (a port
past 65535, a script path that is no file) and every problem is one line and exit status 2,
as with the other subcommands. docs/model-server.md is the manual.
"""

from __future__ import annotations

import sys

from agentlobby_cli.arguments import (
    EXIT_USAGE,
    Parser,
    existing_file,
    host,
    int_from,
    output_file,
    url,
)

PROG = "agentlobby model-server"


def _parser() -> Parser:
    from local_emulator.model_server.recorder import DEFAULT_UPSTREAM

    parser = Parser(
        prog=PROG,
        description="Offline OpenAI-compatible model server (docs/model-server.md): replay a "
        "script with --script, or record a real model's answers with --record.",
    )
    parser.add_argument(
        "--script", type=existing_file, metavar="FILE", help="JSON script to answer from"
    )
    parser.add_argument(
        "--host", type=host, default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int_from(0, 65535, "a port"),
        default=0,
        help="port to listen on (0: any free)",
    )
    parser.add_argument("--record", type=output_file, metavar="OUT", help="record a script to OUT")
    parser.add_argument(
        "--upstream", type=url, help=f"record mode: the API to forward to ({DEFAULT_UPSTREAM})"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str]) -> int:
    """Parse, start the server, serve until SIGINT or SIGTERM; 2 for any usage problem."""
    import logging

    from agentlobby.errors import ConfigError
    from local_emulator.model_server.server import (
        ModelServer,
        load_script_file,
        serve_until_stopped,
    )

    parser = _parser()
    args = parser.parse_args(argv)
    if (args.script is None) == (args.record is None):
        parser.error("give --script FILE to replay, or --record OUT.json to record")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        script = load_script_file(args.script) if args.script else None
        server = ModelServer(
            script, host=args.host, port=args.port, record_to=args.record, upstream=args.upstream
        ).start()
    except (ConfigError, OSError, OverflowError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return serve_until_stopped(server)
