"""The sandbox's helper processes: started in their own session, one run each, one kept warm.

A helper is a bare interpreter running inside.py, waiting for its job on fd 4. The host
keeps at most one idle spare per (interpreter, euid), started in the background while a run
goes on, so the next run skips the interpreter's start. A spare is taken under a lock (one run
gets it), checked alive before use, closed at exit (EOF on its job pipe makes it leave), and
forgotten by a forked child, which closes its copies of every helper's pipes (spare or in a
run). Standard library only.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import fcntl
import os
import select
import signal
import time

from agentlobby.errors import SandboxUnavailable

HERE = os.path.dirname(os.path.abspath(__file__))
# Imported, not run as a script, so its bytecode is cached in __pycache__ where writable.
HELPER = f"import sys;sys.path.insert(0,{HERE!r});import inside;inside.main()"
# The idle spare helper per (interpreter, euid): taken under the lock, so one run gets each.
_spares: dict[tuple[str, int], _Helper] = {}
_filling: set[tuple[str, int]] = set()
# Every helper whose pipes are open here, spare or in a run: a forked child closes its copies.
_open: set[_Helper] = set()
_lock = _thread.allocate_lock()


class _Helper:
    """A started helper: its pid, the read ends of its stdout, stderr and status pipes, and the
    write end of its job pipe (closed once the job is sent)."""

    def __init__(self, pid: int, streams: list[int], job_fd: int) -> None:
        self.pid, self.streams, self.job_fd = pid, streams, job_fd
        self.owner = os.getpid()
        self.reaped = False
        _open.add(self)

    def alive(self) -> bool:
        """False if it has exited (it is reaped here); True if running or not ours to tell."""
        with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: send() finds out
            self.reaped = os.waitpid(self.pid, os.WNOHANG)[0] != 0
        return not self.reaped

    def send(self, job: bytes, deadline: float) -> bool:
        """Write the job and close the pipe; False if the helper died or did not read in time."""
        view = memoryview(job)
        try:
            os.set_blocking(self.job_fd, False)
            while view:
                try:
                    view = view[os.write(self.job_fd, view) :]
                except BlockingIOError:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    poller = select.poll()
                    poller.register(self.job_fd, select.POLLOUT)
                    poller.poll(left * 1000)
            return True
        except BrokenPipeError:
            return False
        finally:
            os.close(self.job_fd)
            self.job_fd = -1

    def close(self) -> None:
        """Close our pipe ends, kill what is left of the helper's session and reap it."""
        for fd in [*self.streams, self.job_fd]:
            if fd >= 0:
                os.close(fd)
        self.streams, self.job_fd = [], -1
        _open.discard(self)
        if self.reaped or self.owner != os.getpid():
            return  # gone (its pid may be reused), or a copy inherited through fork()
        self.reaped = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # SIGCHLD ignored: already reaped
            os.waitpid(self.pid, 0)


def take_spare(key: tuple[str, int]) -> _Helper | None:
    """The idle spare for key, now this caller's alone; None if there is none or it died."""
    with _lock:
        helper = _spares.pop(key, None)
    if helper is not None and not helper.alive():
        helper.close()
        return None
    return helper


def refill(key: tuple[str, int]) -> None:
    """Start the spare for key unless one is there or being started (by another thread)."""
    with _lock:
        if key in _spares or key in _filling:
            return
        _filling.add(key)
    helper = None
    try:
        helper = spawn(key[0])
    except (SandboxUnavailable, OSError):
        pass  # no spare then (out of fds, processes): the run under way must not fail for it
    finally:
        with _lock:
            _filling.discard(key)
            if helper is not None:
                _spares[key] = helper


@atexit.register
def _close_spares() -> None:
    """End the idle spares: EOF on the job pipe, SIGKILL if one is still starting."""
    with _lock:
        helpers = list(_spares.values())
        _spares.clear()
    for helper in helpers:
        helper.close()


def _forget_spares() -> None:
    """In a forked child: the helpers are the parent's; close our copies of their pipes. A copy
    of a job pipe kept open here would keep its helper from ever seeing the job's end."""
    global _lock
    _lock = _thread.allocate_lock()
    for helper in list(_open):  # the spares, and the helpers of runs in other threads
        helper.close()
    _spares.clear()
    _filling.clear()


os.register_at_fork(after_in_child=_forget_spares)


def spawn(python: str) -> _Helper:
    """Start a helper in its own session with stdin /dev/null, fds 1, 2, 3 as our pipes and
    fd 4 its job pipe; it waits there for the job."""
    made: list[int] = []  # every descriptor opened here, closed again if a later one fails
    try:
        pipes = [_pipe(made) for _ in range(3)]
        job_r, job_w = _pipe(made)
        made.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        made[-1] = null = _high(made[-1])
    except OSError as exc:  # out of descriptors: none of those made may leak
        for fd in made:
            os.close(fd)
        raise SandboxUnavailable(f"cannot make the sandbox helper's pipes: {exc}") from exc
    ours, theirs = [r for r, _ in pipes], [w for _, w in pipes]
    actions = [(os.POSIX_SPAWN_DUP2, null, 0)]
    actions += [(os.POSIX_SPAWN_DUP2, fd, n) for n, fd in enumerate(theirs, 1)]
    actions.append((os.POSIX_SPAWN_DUP2, job_r, 4))
    restore = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    argv = [python, "-I", "-S", "-u", "-c", HELPER]
    try:
        pid = os.posix_spawn(
            python, argv, env, file_actions=actions, setsid=True, setsigdef=restore
        )
    except OSError as exc:
        for fd in [*ours, job_w]:
            os.close(fd)
        raise SandboxUnavailable(f"cannot start the sandbox's Python {python}: {exc}") from exc
    finally:
        for fd in [*theirs, job_r, null]:
            os.close(fd)
    return _Helper(pid, ours, job_w)


def _pipe(made: list[int]) -> tuple[int, int]:
    """A pipe with both ends above 4, recorded in `made` as soon as they exist."""
    r, w = os.pipe()
    made += [r, w]
    made[-2] = r = _high(r)
    made[-1] = w = _high(w)
    return r, w


def _high(fd: int) -> int:
    """Move fd above 4 so dup2 into 0-4 in the child cannot clobber another source."""
    if fd > 4:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved
