"""The status line of `watch`: redrawn in place on a terminal, plain lines anywhere else.

On a terminal the last line of the screen is the status (progress.status_text), rewritten
with a carriage return and ANSI "erase line" (ESC [2K) as the clock ticks; a message is
printed above it by erasing the status, printing the message, and drawing the status again.
The line is cut to the terminal's width so it never wraps (a wrapped line cannot be redrawn).
When stdout is not a terminal (a pipe, a file, CI) nothing is redrawn and no escape code is
written: a status line `-- ...` is printed each time the work moves on (another agent, round,
run or status), not as the clock ticks. Standard library only.
"""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from agentlobby_cli.arguments import escaped
from agentlobby_cli.progress import Progress, status_text

ERASE_LINE = "\r\x1b[2K"
PLAIN_PREFIX = "-- "


class LiveStatus:
    """Prints messages and the status of one conversation to `stream` (stdout by default)."""

    def __init__(self, stream: TextIO | None = None, terminal: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self._drawn = ""  # the status line now on screen (terminal mode)
        self._last_key: tuple[object, ...] | None = None

    def message(self, text: str) -> None:
        """A message line (or a few), above the status."""
        if self.terminal and self._drawn:
            self.stream.write(ERASE_LINE + text + "\n" + self._drawn)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, progress: Progress) -> None:
        if self.terminal:
            width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
            line = escaped(status_text(progress))[:width]
            if line != self._drawn:
                self.stream.write(ERASE_LINE + line)
                self.stream.flush()
                self._drawn = line
            return
        key = progress.key()
        if key != self._last_key:
            self._last_key = key
            self.stream.write(PLAIN_PREFIX + escaped(status_text(progress)) + "\n")
            self.stream.flush()

    def close(self, final: Progress | None = None) -> None:
        """Leave the last status on its own line (the final one, when given)."""
        if final is not None:
            self.update(final)
        if self.terminal and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = ""
