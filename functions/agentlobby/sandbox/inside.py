"""The inside of the sandbox: enters the isolation, runs the code, reports how it ended.

runner.py never imports this file: a bare interpreter (`python -I -S -u`) imports it and calls
main(), so it must run under whichever Python the sandbox uses, with the standard library only,
and start in a few milliseconds: no json, no subprocess, no resource (prlimit64 through libc), and
`_signal` and `_ctypes` rather than `signal` (which builds enums) and `ctypes` (which builds a
type zoo). It plays three parts, each a
process:

    supervisor   started by the host; enters new namespaces (unshare) and forks the init;
                 on SIGTERM from the host it kills the init, which ends the whole namespace
    init         pid 1 of the new pid namespace (at the rlimits levels: the supervisor itself,
                 made a child subreaper); builds the root, forks the code's process, enforces
                 the wall clock, kills every process left, reports on fd 3
    code         drops to the unprivileged uid, sets the rlimits, runs main.py

The helper starts with no job: it blocks reading fd 4, a pipe, until the host writes the run's
settings and files and closes its end (see read_job). So the host can start it before it knows
the run (a warm spare, runner.py) and a cold start is the same with the job written at once.
Each helper serves one job and exits; EOF without a whole job (the host closed the spare or
died) makes it exit without running anything.

fd 3 carries one line per event to the host: `unavailable <why>` (try a lower level),
`isolation <level>`, `error <why>` (the code could not be started), and last
`exit <code|signal|none> <number> <reason|->`. No line comes before the code could have run, so
a helper that dies with fd 3 silent never ran any code. At the namespace levels the job carries
main.py and the files (see unpack), which init writes into the sandbox's own /work.

One file on purpose: it is imported by a bare interpreter from this directory, not as part of the
agentlobby package (whose __init__ may import what the sandbox's Python lacks).
"""

# No `from __future__ import annotations` (importing it costs 0.07 ms): the annotations that
# Python 3.9 cannot evaluate are strings.
import _ctypes
import _signal as signal
import gc
import os
import sys
import time

STATUS_FD, JOB_FD = 3, 4
NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x20000000 | 0x40000000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 36, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
WAIT_SET = {signal.SIGCHLD, signal.SIGTERM}
SAFE_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "mime.types")
DEVICES = ("null", "zero", "full", "random", "urandom")
# Linux's generic rlimit numbers (alpha, mips and sparc number them otherwise: resource knows).
RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_CORE, RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_AS = 0, 1, 4, 6, 7, 9
if os.uname().machine.startswith(("alpha", "mips", "sparc")):
    import resource

    RLIMIT_CPU, RLIMIT_FSIZE = resource.RLIMIT_CPU, resource.RLIMIT_FSIZE
    RLIMIT_CORE, RLIMIT_NPROC = resource.RLIMIT_CORE, resource.RLIMIT_NPROC
    RLIMIT_NOFILE, RLIMIT_AS = resource.RLIMIT_NOFILE, resource.RLIMIT_AS
RLIM_INFINITY = (1 << 64) - 1


class CInt(_ctypes._SimpleCData):  # type: ignore[type-arg]  # what ctypes.c_int is
    _type_ = "i"


class CULong(_ctypes._SimpleCData):  # type: ignore[type-arg]  # what ctypes.c_ulong is
    _type_ = "L"


class CULongLong(_ctypes._SimpleCData):  # type: ignore[type-arg]  # what ctypes.c_ulonglong is
    _type_ = "Q"


class RLimit(_ctypes.Array):  # type: ignore[type-arg]  # struct rlimit64 {cur, max}
    _type_ = CULongLong
    _length_ = 2


class CFunction(_ctypes.CFuncPtr):  # what ctypes.CDLL(None, use_errno=True).f is
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = CInt


class Libc:
    """libc's functions by name, for the few syscalls the os module lacks before 3.12/3.13."""

    _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> CFunction:
        function = CFunction((name, Libc))  # type: ignore[arg-type]
        setattr(self, name, function)  # looked up once, not on every call
        return function


libc = Libc()


def check(result: int, what: str) -> int:
    if result < 0:
        err = _ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def getrlimit(which: int) -> tuple[int, int]:
    """resource.getrlimit without importing resource (a shared library: 0.17 ms to load)."""
    old = RLimit()
    check(libc.prlimit64(0, which, None, old), f"getrlimit({which})")
    return old[0], old[1]


def setrlimit(which: int, soft: int, hard: int) -> None:
    check(libc.prlimit64(0, which, RLimit(soft, hard), None), f"setrlimit({which})")


def prctl(option: int, arg: int) -> None:
    check(libc.prctl(option, CULong(arg), 0, 0, 0), f"prctl({option})")


def mount(
    src: "str | None", dst: str, fstype: "str | None", flags: int, data: "str | None" = None
) -> None:
    def enc(s: "str | None") -> "bytes | None":
        return None if s is None else os.fsencode(s)

    check(libc.mount(enc(src), enc(dst), enc(fstype), CULong(flags), enc(data)), dst)


def report(line: str) -> None:
    os.write(STATUS_FD, (line.replace("\n", " ") + "\n").encode())


def enter(level: str, cfg: dict[str, str]) -> None:
    """unshare into the namespaces of `level`; raise OSError if this machine forbids it."""
    if level == "namespaces":
        check(libc.unshare(NAMESPACES), "unshare")
    elif level == "userns":
        if os.geteuid() == 0:  # root asked for this level: be an unprivileged caller first
            become(int(cfg["uid"]), int(cfg["gid"]))
            prctl(PR_SET_DUMPABLE, 1)  # the uid change made /proc/self root's
        uid, gid = os.geteuid(), os.getegid()
        check(libc.unshare(NAMESPACES | CLONE_NEWUSER), "unshare --user")
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"0 {uid} 1"),
            ("gid_map", f"0 {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)


def become(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def bind(src: str, dst: str) -> None:
    """Bind src at dst read-only, keeping the flags the source mount locks."""
    mount(src, dst, None, MS_BIND | MS_REC)
    st = os.statvfs(src)
    keep = st.f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | (1 << 21))
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | keep | MS_RDONLY
    mount(None, dst, None, flags)


def mount_point() -> str:
    """Where to build the root: any directory will do, since our mount namespace is private and
    the old root is detached afterwards, so nothing is created on (or left behind on) the host."""
    for name in ("/tmp", "/mnt", "/opt", "/srv", "/home", "/var"):
        if os.path.isdir(name) and not os.path.islink(name):
            return name
    raise OSError(2, "no directory to build the sandbox's root on (/tmp is missing)")


def build_root(cfg: dict[str, str]) -> None:
    """Make a tmpfs root holding /usr, the interpreter, /dev, /proc, /tmp and /work; pivot in."""
    root = mount_point()
    uid, gid = int(cfg["uid"]), int(cfg["gid"])
    tmpfs_opts = f"size={cfg['tmpfs']},nr_inodes=8192"
    prefix = os.path.realpath(sys.base_prefix)
    outside_usr = prefix != "/usr" and not prefix.startswith("/usr/")
    # The prefix may lie under the mount point (a Python in /tmp): hold it open before covering.
    held = os.open(prefix, os.O_PATH | os.O_CLOEXEC) if outside_usr else -1
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("sandbox", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    os.mkdir(f"{root}/usr")
    bind("/usr", f"{root}/usr")
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        if os.path.islink(f"/{top}"):
            os.symlink(os.readlink(f"/{top}"), f"{root}/{top}")
        elif os.path.isdir(f"/{top}"):
            os.mkdir(f"{root}/{top}")
            bind(f"/{top}", f"{root}/{top}")
    if outside_usr:
        os.makedirs(root + prefix)
        bind(f"/proc/self/fd/{held}", root + prefix)
        os.close(held)
    os.mkdir(f"{root}/etc")
    for name in SAFE_ETC:
        src, dst = f"/etc/{name}", f"{root}/etc/{name}"
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            os.mkdir(dst)
            bind(src, dst)
        elif os.path.isfile(src):
            open(dst, "w").close()
            bind(src, dst)
    etc = {
        "passwd": f"root:x:0:0:root:/root:/sbin/nologin\nsandbox:x:{uid}:{gid}::/work:/bin/sh\n",
        "group": f"root:x:0:\nsandbox:x:{gid}:\n",
        "hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
        "hostname": "sandbox\n",
    }
    for name, text in etc.items():
        with open(f"{root}/etc/{name}", "w") as f:
            f.write(text)
    os.mkdir(f"{root}/dev")
    for dev in DEVICES:  # a plain bind: MS_NODEV would make the device unusable
        open(f"{root}/dev/{dev}", "w").close()
        mount(f"/dev/{dev}", f"{root}/dev/{dev}", None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, f"{root}/dev/{name}")
    os.symlink("/proc/self/fd/1", f"{root}/dev/stdout")
    os.symlink("/proc/self/fd/2", f"{root}/dev/stderr")
    for path, mode in (("dev/shm", "1777"), ("tmp", "1777"), ("work", "0755")):
        os.mkdir(f"{root}/{path}")
        mount(
            "sandbox", f"{root}/{path}", "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode},{tmpfs_opts}"
        )
    os.mkdir(f"{root}/proc")
    mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    check(libc.sethostname(b"sandbox", 7), "sethostname")
    os.chdir(root)
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is not None:
        check(libc.syscall(number, b".", b"."), "pivot_root")
        check(libc.umount2(b".", 2), "umount old root")
    else:
        mount(".", "/", None, 8192)  # MS_MOVE, then chroot: for machines without a known number
        os.chroot(".")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def read_job() -> "tuple[dict[str, str], bytes]":
    """The run's settings and packed files, as sandbox._job wrote them to JOB_FD: a line
    `<settings length> <files length>`, the settings (`key=value`, NUL-separated), the files.
    Blocks until the host closes its end; exits quietly on anything but one whole job."""
    chunks = []
    while True:
        chunk = os.read(JOB_FD, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(JOB_FD)
    job = b"".join(chunks)
    try:
        end = job.index(b"\n")
        settings_len, files_len = map(int, job[:end].split())
        if len(job) != end + 1 + settings_len + files_len:
            raise ValueError("a partial job")
        settings = os.fsdecode(job[end + 1 : end + 1 + settings_len])
        cfg = dict(item.split("=", 1) for item in settings.split("\0"))
    except ValueError:
        os._exit(0)  # no job (the spare was closed) or a partial one: run nothing
    return cfg, job[end + 1 + settings_len :]


def unpack(files: bytes, dst: str, uid: int, gid: int) -> None:
    """Write the packed files (`<name length> <data length>\\n<name><data>`, repeated) to dst.
    The host checked the names: relative, no `..`, no empty parts."""
    os.chown(dst, uid, gid)
    at = 0
    while at < len(files):
        end = files.index(b"\n", at)
        name_len, data_len = map(int, files[at:end].split())
        name = os.fsdecode(files[end + 1 : end + 1 + name_len])
        at = end + 1 + name_len + data_len
        path = os.path.join(dst, name)
        parent = dst
        for part in name.split("/")[:-1]:
            parent = os.path.join(parent, part)
            if not os.path.isdir(parent):
                os.mkdir(parent, 0o755)
                os.chown(parent, uid, gid)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(files)[at - data_len : at]
            while view:
                view = view[os.write(fd, view) :]
            os.fchown(fd, uid, gid)
        finally:
            os.close(fd)


def drop_privileges(level: str, cfg: dict[str, str]) -> None:
    """Lose every capability for good: bounding set, then uid (or capset in a user namespace)."""
    if level != "rlimits" or os.geteuid() == 0:
        for cap in range(64):
            if libc.prctl(PR_CAPBSET_DROP, CULong(cap), 0, 0, 0) < 0:
                break
    if level == "userns":
        header = (0x20080522).to_bytes(4, sys.byteorder) + bytes(4)  # v3, this process
        check(libc.capset(header, bytes(24)), "capset")
    elif os.geteuid() == 0:
        become(int(cfg["uid"]), int(cfg["gid"]))
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def classify(exc: "BaseException | None") -> str:
    """Which limit, if any, an uncaught exception says the code ran into."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, MemoryError):
            return "memory"
        if isinstance(exc, OSError) and exc.errno == 27:  # EFBIG
            return "file-size"
        eagain = isinstance(exc, OSError) and exc.errno == 11
        if (eagain or "can't start new thread" in str(exc)) and fork_refused():
            return "processes"  # EAGAIN is also a non-blocking read: ask the kernel again
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return ""


def fork_refused() -> bool:
    """Whether this process is at RLIMIT_NPROC right now."""
    try:
        pid = os.fork()
    except OSError as exc:
        return exc.errno == 11
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return False


def run_code(level: str, cfg: dict[str, str], reason_fd: int) -> None:
    """Become the code's process and run main.py as `python main.py` would. Never returns."""
    work = "/work" if level != "rlimits" else cfg["workdir"]
    try:
        confine(level, cfg, work)
    except (OSError, ValueError) as exc:
        report(f"error cannot confine the code: {exc}")
        os._exit(125)
    os.close(STATUS_FD)
    main_path = os.path.join(work, "main.py")
    sys.argv = ["main.py"]
    sys.path[0] = work  # was this file's directory
    sys.dont_write_bytecode = True
    import site

    site.main()
    module = type(sys)("__main__")
    module.__dict__.update(__file__=main_path, __builtins__=__builtins__, __cached__=None)
    sys.modules["__main__"] = module
    try:
        with open(main_path, "rb") as f:
            code = compile(f.read(), main_path, "exec")
        exec(code, module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        reason = classify(exc)
        if reason:
            os.write(reason_fd, reason.encode())
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # drop this frame
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        raise SystemExit(1) from None
    raise SystemExit(0)


def confine(level: str, cfg: dict[str, str], work: str) -> None:
    """rlimits, no privileges, a clean environment: what the code's process starts with."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.chdir(work)
    mem, cpu = int(cfg["mem"]), int(cfg["cpu"])
    for limit, (soft, hard) in (
        (RLIMIT_AS, (mem, mem)),
        (RLIMIT_CPU, (cpu, cpu + 1)),
        (RLIMIT_NPROC, (int(cfg["nproc"]), int(cfg["nproc"]))),
        (RLIMIT_FSIZE, (int(cfg["fsize"]), int(cfg["fsize"]))),
        (RLIMIT_CORE, (0, 0)),
    ):
        ceiling = getrlimit(limit)[1]  # a host that set lower limits keeps them
        if ceiling != RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        setrlimit(limit, soft, hard)
    drop_privileges(level, cfg)
    bindir = os.path.dirname(sys.executable)
    path = "/usr/local/bin:/usr/bin:/bin"
    os.environ.clear()
    os.environ.update(
        PATH=path if bindir in ("/usr/bin", "/usr/local/bin") else f"{bindir}:{path}",
        HOME=work,
        TMPDIR="/tmp" if level != "rlimits" else cfg["tmp"],
        LANG="C.UTF-8",
        PYTHONUNBUFFERED="1",
    )


def children() -> list[int]:
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        found = []
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
        return found


def kill_all() -> None:
    """Kill and reap every process below this one (orphans included: we are their reaper)."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0]:
                continue
        except ChildProcessError:
            return
        for pid in children():
            try:  # noqa: SIM105 - contextlib costs a millisecond of startup here
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def init(level: str, cfg: dict[str, str]) -> None:
    """Fork the code's process, wait for it within the wall clock, clean up, report. Exits."""
    reason_r, reason_w = os.pipe()
    # The code's process inherits this interpreter's objects copy-on-write. Frozen, the garbage
    # collector never walks them there, so the code's final collection at exit does not copy
    # every page they live on: that walk made the code's exit 0.7 ms slower than python's.
    gc.freeze()
    code_pid = os.fork()
    if code_pid == 0:
        os.close(reason_r)
        run_code(level, cfg, reason_w)
    os.close(reason_w)
    prctl(PR_SET_DUMPABLE, 0)
    deadline = time.monotonic() + float(cfg["timeout"])
    status, cpu_used, stop = None, 0.0, ""
    while status is None:
        pid, st, usage = os.wait4(-1, os.WNOHANG)
        if pid == code_pid:
            status, cpu_used = st, usage.ru_utime + usage.ru_stime
        elif pid == 0:
            left = deadline - time.monotonic()
            if left <= 0:
                stop = "timeout"
                break
            info = signal.sigtimedwait(WAIT_SET, left)
            if info is not None and info.si_signo == signal.SIGTERM:
                stop = "stopped"
                break
    kill_all()
    os.set_blocking(reason_r, False)
    try:
        said = os.read(reason_r, 64).decode(errors="replace")
    except BlockingIOError:
        said = ""
    if status is None:
        report(f"exit none 0 {stop}")
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        cpu_out = sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= int(cfg["cpu"]))
        why = "cpu-time" if cpu_out else "file-size" if sig == signal.SIGXFSZ else said
        report(f"exit signal {sig} {why or '-'}")
    else:
        report(f"exit code {os.waitstatus_to_exitcode(status)} {said or '-'}")
    os._exit(0)


def supervise(child: int) -> None:
    """Wait for the namespace's init; on SIGTERM from the host, kill it (and so everything)."""
    while True:
        pid, _ = os.waitpid(child, os.WNOHANG)
        if pid:
            os._exit(0)
        info = signal.sigtimedwait(WAIT_SET, 3600)
        if info is not None and info.si_signo == signal.SIGTERM:
            os.kill(child, signal.SIGKILL)


def main() -> None:
    del sys.modules["inside"]  # the code gets a clean module table
    signal.pthread_sigmask(signal.SIG_BLOCK, WAIT_SET)
    os.closerange(JOB_FD + 1, getrlimit(RLIMIT_NOFILE)[0])
    cfg, files = read_job()  # a warm spare waits here
    level = cfg["level"]
    try:
        enter(level, cfg)
    except OSError as exc:
        report(f"unavailable {level}: {exc}")
        os._exit(0)
    if level == "rlimits":
        try:  # noqa: SIM105 - orphans of the code become ours, so kill_all finds them
            prctl(PR_SET_CHILD_SUBREAPER, 1)
        except OSError:
            pass  # an old or emulated kernel: docs/sandbox.md says what is lost then
        report("isolation " + ("uid+rlimits" if os.geteuid() == 0 else "rlimits-only"))
        init(level, cfg)
    child = os.fork()
    if child:
        del files
        supervise(child)
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if level == "userns":
            cfg["uid"] = cfg["gid"] = "0"
        build_root(cfg)
    except OSError as exc:
        report(f"unavailable {level}: {exc}")
        os._exit(0)
    try:
        unpack(files, "/work", int(cfg["uid"]), int(cfg["gid"]))
    except (OSError, ValueError) as exc:
        report(f"error cannot write the files into /work: {exc}")
        os._exit(0)
    del files  # the code's process starts without them
    report("isolation " + ("namespaces+uid" if level == "namespaces" else "userns"))
    init(level, cfg)
