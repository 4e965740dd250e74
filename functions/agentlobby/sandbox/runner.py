"""Run untrusted Python in a throwaway sandbox and say what happened.

The interpreter agent and `agentlobby run-code` run model-written code here. Each run gets a fresh
working directory, a clean environment, a wall clock and rlimits, and as much Linux isolation as
the machine allows, tried in this order:

    namespaces+uid   root: new mount, pid, net (lo down), ipc, uts and cgroup namespaces, a tmpfs
                     root holding read-only /usr and the interpreter, pivot_root, then a fresh
                     unprivileged uid with no capabilities
    userns           not root but unprivileged user namespaces allowed: the same namespaces and
                     root; the code keeps the caller's uid (as the namespace's root) minus every
                     capability
    uid+rlimits      root without namespaces: a fresh uid, rlimits, a reaper that kills leftovers
    rlimits-only     neither: rlimits, clean environment, the reaper; no filesystem or network walls

docs/sandbox.md says exactly what holds at each level. The host side here only spawns the helper
(inside.py, imported under a bare interpreter), writes it the run's job, reads its
output with caps, and enforces a backstop deadline. Standard library only, so `agentlobby
run-code` starts fast.

A warm spare hides the helper's interpreter start: each run starts the next helper in the
background, where it waits for a job; the next run (any level, any limits: everything specific
to a run travels in the job) takes it if it is still alive, else starts one cold. A helper serves
one run and exits, so runs share no interpreter. `warm=False` or AGENTLOBBY_SANDBOX_WARM=0 turns
this off; docs/sandbox.md gives the safety argument.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from agentlobby.errors import ConfigError, InvalidMessage, SandboxUnavailable
from agentlobby.sandbox.helpers import refill, spawn, take_spare

__all__ = [
    "ExecutionResult",
    "SandboxLimits",
    "SandboxUnavailable",
    "interpreter",
    "run_python",
]

TYPE_CHECKING = False  # typing costs `agentlobby run-code` 1.5 ms of startup
if TYPE_CHECKING:
    from typing import Literal

    Isolation = Literal["auto", "namespaces", "userns", "rlimits"]
UID_BASE, UID_SPAN = 1_600_000_000, 100_000_000  # no real account lives up here
BACKSTOP_S = 2.0  # the helper enforces the wall clock; the host kills only if it did not
DRAIN_S = 1.0
CHUNK = 65536
_unavailable: set[str] = set()


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use; a limit that is hit ends the run and names itself in `reason`."""

    timeout_s: float = 10.0
    cpu_s: float | None = None
    memory_mb: int = 512
    max_processes: int = 64
    max_file_mb: int = 16
    max_output_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value is not None and not value > 0:
                raise ConfigError(f"sandbox limit {name}={value!r} must be positive")

    @property
    def cpu_seconds(self) -> int:
        """RLIMIT_CPU takes whole seconds: the timeout rounded up unless cpu_s is set."""
        return max(1, math.ceil(self.timeout_s if self.cpu_s is None else self.cpu_s))


@dataclass(frozen=True)
class ExecutionResult:
    """How a run ended. exit_code is None when the sandbox stopped the code, -N for signal N."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_ms: int
    truncated: bool
    reason: str | None
    isolation: str

    def to_json_dict(self) -> dict[str, object]:
        return asdict(self)


def interpreter() -> str:
    """The Python that runs sandboxed code: /usr/bin/python3 (already under the read-only /usr,
    starts fast) when it is 3.9 or newer, else the real file behind sys.executable."""
    system = os.path.realpath("/usr/bin/python3")
    name = os.path.basename(system)
    if name.startswith("python3.") and name[8:].isdigit() and int(name[8:]) >= 9:
        return system
    return os.path.realpath(sys.executable)


def run_python(
    source: str,
    *,
    files: Mapping[str, bytes] | None = None,
    limits: SandboxLimits = SandboxLimits(),
    isolation: Isolation = "auto",
    python: str | None = None,
    warm: bool | None = None,
) -> ExecutionResult:
    """Run `source` as main.py (next to `files`) in a fresh sandbox and return what happened.

    isolation="auto" takes the strongest level that works here; naming a level demands it and
    raises SandboxUnavailable if the machine forbids it. `python` is the interpreter's real path
    (default: interpreter()); its installation prefix is bound read-only into the sandbox.
    warm: use (and afterwards start) a spare helper waiting for a run; default on unless the
    environment says AGENTLOBBY_SANDBOX_WARM=0.
    """
    if warm is None:
        warm = os.environ.get("AGENTLOBBY_SANDBOX_WARM", "1") != "0"
    if isolation == "auto":
        levels = ["namespaces", "userns", "rlimits"] if os.geteuid() == 0 else ["userns", "rlimits"]
        levels = [level for level in levels if level not in _unavailable] or ["rlimits"]
    else:
        levels = [isolation]
    entries = _entries(source, files or {})
    why: list[str] = []
    for level in levels:
        # The namespace levels unpack the files into their own tmpfs: no directory on the host.
        base = _prepare(entries) if level == "rlimits" else None
        try:
            result = _run_once(level, base, entries, limits, python or interpreter(), why, warm)
        finally:
            if base is not None:
                _remove(base)
        if result is not None:
            return result
        if isolation == "auto":
            _unavailable.add(level)
    raise SandboxUnavailable(
        "no sandbox isolation level works here: " + "; ".join(why) + ". Run as root, allow "
        "unprivileged user namespaces, or pass isolation='rlimits' (weak: see docs/sandbox.md)"
    )


def _entries(source: str, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """main.py and the files, every name checked to be a relative path inside the directory."""
    entries = dict(files)
    entries["main.py"] = source.encode()
    for name in entries:
        parts = name.split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise InvalidMessage(f"sandbox file name {name!r} must be a relative path like a/b.py")
        for end in range(1, len(parts)):
            if "/".join(parts[:end]) in entries:
                raise InvalidMessage(
                    f"sandbox file name {name!r} puts a file under the file "
                    f"{'/'.join(parts[:end])!r}: rename one of them"
                )
    return entries


def _job(config: Mapping[str, str], entries: Mapping[str, bytes]) -> bytes:
    """What the helper reads from its job pipe (inside.read_job, unpack): a line with the
    two lengths, the settings `key=value` NUL-separated, then the files packed."""
    settings = os.fsencode("\0".join(f"{k}={v}" for k, v in config.items()))
    chunks = []
    for name, data in entries.items():
        raw = name.encode()
        chunks += [b"%d %d\n" % (len(raw), len(data)), raw, data]
    files = b"".join(chunks)
    return b"%d %d\n" % (len(settings), len(files)) + settings + files


def _prepare(entries: Mapping[str, bytes]) -> str:
    """A private directory for the rlimits levels: work/ holds main.py and the files."""
    tmp = os.environ.get("TMPDIR") or "/tmp"
    if os.geteuid() == 0 and not _traversable(tmp):
        tmp = "/tmp"  # the uid levels drop to a fresh uid before they enter the directory
    base = os.path.join(tmp, "agentlobby-sandbox-" + os.urandom(8).hex())
    os.mkdir(base, 0o700)
    for sub in ("work", "tmp"):
        os.mkdir(os.path.join(base, sub), 0o700)
    for name, data in entries.items():
        path = os.path.join(base, "work", *name.split("/"))
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return base


def _run_once(
    level: str,
    base: str | None,
    entries: Mapping[str, bytes],
    limits: SandboxLimits,
    python: str,
    why: list[str],
    warm: bool,
) -> ExecutionResult | None:
    uid = UID_BASE + int.from_bytes(os.urandom(4), "big") % UID_SPAN
    config = {"level": level}
    if base is not None:
        config.update(workdir=os.path.join(base, "work"), tmp=os.path.join(base, "tmp"))
        if os.geteuid() == 0:  # the helper drops to uid first
            os.chmod(base, 0o711)
            for sub in ("work", "tmp"):
                _chown_tree(os.path.join(base, sub), uid)
    config |= {
        "uid": str(uid),
        "gid": str(uid),
        "timeout": repr(limits.timeout_s),
        "cpu": str(limits.cpu_seconds),
        "mem": str(limits.memory_mb << 20),
        "nproc": str(limits.max_processes),
        "fsize": str(limits.max_file_mb << 20),
        "tmpfs": str(limits.memory_mb << 20),
    }
    job = _job(config, entries if base is None else {})
    key = (python, os.geteuid())
    helper = take_spare(key) if warm else None
    while True:
        started = time.monotonic()
        spare = helper is not None
        if helper is None:
            helper = spawn(python)
        sent = helper.send(job, started + limits.timeout_s + BACKSTOP_S)
        if warm:
            refill(key)  # the next run's helper starts while this one runs
        if not sent and spare:  # the spare died or hung before its job: nothing ran
            helper.close()
            helper = None
            continue
        try:
            out, err, status, stopped = _collect(helper.pid, helper.streams, limits, started)
        finally:
            helper.close()
        if spare and not status:  # no line at all: the spare never started the job
            helper = None
            continue
        break
    duration_ms = round((time.monotonic() - started) * 1000)
    lines = status.decode(errors="replace").splitlines()
    events = dict(line.split(" ", 1) for line in lines if " " in line)
    if "unavailable" in events:
        why.append(events["unavailable"])
        return None
    if "error" in events:
        raise SandboxUnavailable(f"the sandbox could not start the code: {events['error']}")
    if "exit" not in events and not stopped:
        tail = err[-2000:].decode(errors="replace")
        raise SandboxUnavailable(f"the sandbox helper failed at level {level}: {tail}")
    cap = limits.max_output_bytes
    kind, number, said = events.get("exit", "none 0 -").split(" ")
    reason = stopped or (None if said in ("-", "stopped") else said)
    return ExecutionResult(
        exit_code={"code": int(number), "signal": -int(number)}.get(kind),
        stdout=out[:cap].decode(errors="replace"),
        stderr=err[:cap].decode(errors="replace"),
        timed_out=reason == "timeout",
        duration_ms=duration_ms,
        truncated=len(out) > cap or len(err) > cap,
        reason=reason,
        isolation=events.get("isolation", level),
    )


def _collect(
    pid: int, fds: list[int], limits: SandboxLimits, started: float
) -> tuple[bytes, bytes, bytes, str | None]:
    """Read stdout, stderr and the status pipe until they close, within the limits."""
    buffers = {fd: bytearray() for fd in fds}
    cap = limits.max_output_bytes
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    open_fds = set(fds)
    deadline = started + limits.timeout_s + BACKSTOP_S
    stopped: str | None = None
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            if stopped is not None:
                break
            stopped = "timeout"
            _stop(pid)
            deadline = time.monotonic() + DRAIN_S
            continue
        for fd, _ in poller.poll(left * 1000):
            data = os.read(fd, CHUNK)
            if not data:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            buf = buffers[fd]
            if len(buf) <= cap:
                buf += data
            if fd != fds[2] and len(buf) > cap and stopped is None:
                stopped = "output-flood"
                _stop(pid)
                deadline = time.monotonic() + DRAIN_S
    return bytes(buffers[fds[0]]), bytes(buffers[fds[1]]), bytes(buffers[fds[2]]), stopped


def _stop(pid: int) -> None:
    """Ask the helper to end the run (it kills the whole namespace or process tree)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _traversable(path: str) -> bool:
    """Whether any user may walk through every directory down to path."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & 0o001:
                return False
        except OSError:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def _chown_tree(path: str, uid: int) -> None:
    os.chown(path, uid, uid)
    for here, dirs, names in os.walk(path):
        for name in dirs + names:
            os.chown(os.path.join(here, name), uid, uid)


def _remove(base: str) -> None:
    """Delete the run's directory, even where the code left unreadable or unwritable entries."""
    import shutil  # argparse has imported it already in `agentlobby run-code`

    def force(func: object, path: str, exc: object) -> None:
        os.chmod(os.path.dirname(path), 0o700)  # a real directory: rmtree follows no links
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)

    shutil.rmtree(base, onerror=force)
