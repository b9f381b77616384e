"""A real, throwaway PostgreSQL server for tests, from the distribution's installed binaries.

Debian installs the server programs (``initdb``, ``pg_ctl``, ``postgres``) under
``/usr/lib/postgresql/<major>/bin``, which is not on PATH; :func:`postgres_bindir` finds them.
Each server gets its own cluster in a private directory, listens on 127.0.0.1 only, on a free
port, with its unix socket and log file inside that directory, and trusts every connection
(loopback and socket only). The bootstrap superuser is ``spcmon`` and owns a ``spcmon``
database, so :attr:`PostgresServer.dsn` is ``postgresql://spcmon@127.0.0.1:PORT/spcmon``.

initdb refuses to run as root, and so do pg_ctl and postgres. When the tests run as root (CI
does), every server program runs as an unprivileged user instead, ``nobody`` unless
``$SPCMON_PG_USER`` names another; see :func:`_run` for how. That user must be able to reach
the data directory, which rules out pytest's ``tmp_path`` (under a root-only 0700
``/tmp/pytest-of-root``), so by default :func:`running_postgres` makes its own directory
directly under /dev/shm (or the temporary directory, see :func:`_scratch_root`) and removes
it on exit.

initdb is the slow part (about 1 s), so the first server of a process builds a template cluster
once and every server starts from a copy of it: about 1.2 s for the first server of a test
run, 0.25 s for each further one, 0.15 s for a stop and 0.15 s for a start.

Durability is off by default (:data:`FAST_SETTINGS`) for speed; a fault-tolerance test passes
``settings=DURABLE_SETTINGS`` (or any other ``postgresql.conf`` values) to get it back.

Usage from a session-scoped fixture in ``tests/conftest.py``::

    from tests.support.postgres import PostgresServer, postgres_unavailable, running_postgres

    @pytest.fixture(scope="session")
    def postgres() -> Iterator[PostgresServer]:
        if reason := postgres_unavailable():
            pytest.fail(reason)  # PostgreSQL is part of the product: missing is a failure
        with running_postgres() as server:
            yield server

and a test connects with ``psycopg.connect(postgres.dsn)``. A test that stops or crashes its
server should use a server of its own (``with running_postgres() as server:``) rather than the
shared one.
"""

from __future__ import annotations

import atexit
import functools
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.local_broker import free_port

ROLE = "spcmon"
DATABASE = "spcmon"
ENV_BINDIR = "SPCMON_PG_BINDIR"  # use exactly this directory, no search (also: "not found" tests)
ENV_USER = "SPCMON_PG_USER"  # the unprivileged user to run the server as when we are root
ENV_TMPDIR = "SPCMON_PG_TMPDIR"  # where server directories go (default: see _scratch_root)
DEFAULT_USER = "nobody"
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")

# Throwaway data needs no crash safety; these make commits and checkpoints nearly free.
FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
}
# PostgreSQL's own defaults, for tests that crash the server and expect committed data back.
DURABLE_SETTINGS: Mapping[str, str] = {
    "fsync": "on",
    "full_page_writes": "on",
    "synchronous_commit": "on",
}

StopMode = Literal["smart", "fast", "immediate"]

_CONF_NAME = "spcmon-test.conf"  # per-server settings, rewritten on every start
_HBA = (
    "# spcmon test server: trust everyone, but only over the socket and IPv4 loopback\n"
    "local all all trust\n"
    "host  all all 127.0.0.1/32 trust\n"
)


# ---------------------------------------------------------------------------------------------
# Finding the binaries and the user


def _is_server_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in SERVER_PROGRAMS)


def _version_key(bindir: Path) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin; unparsable versions sort first."""
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return (-1,)


@functools.cache
def _discover_bindir() -> Path | None:
    candidates: list[Path] = []
    # pg_config may belong to libpq-dev (the client's version), whose bindir can lack the
    # server programs when client and server versions differ: every candidate is checked.
    if pg_config := shutil.which("pg_config"):
        with suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(Path(out.stdout.strip()))
    if initdb := shutil.which("initdb"):  # non-Debian systems put the programs on PATH
        candidates.append(Path(initdb).parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    return next((path for path in candidates if _is_server_bindir(path)), None)


def postgres_bindir() -> Path | None:
    """Directory holding initdb, pg_ctl and postgres, or None when they are not installed.

    ``$SPCMON_PG_BINDIR``, when set, is the only place looked at. Otherwise: ``pg_config
    --bindir``, then PATH, then the newest ``/usr/lib/postgresql/*/bin``.
    """
    override = os.environ.get(ENV_BINDIR)
    if override is not None:
        return Path(override) if _is_server_bindir(Path(override)) else None
    return _discover_bindir()


@dataclass(frozen=True)
class _User:
    """The unprivileged account the server programs run as when this process is root."""

    name: str
    uid: int
    gid: int


def _server_user() -> _User | None:
    """None when not root (run the programs as ourselves); else the user to switch to."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(ENV_USER) or DEFAULT_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"running as root, and initdb refuses root, but user {name!r} (to run PostgreSQL "
            f"as) does not exist: set ${ENV_USER} to an existing unprivileged user"
        ) from None
    if entry.pw_uid == 0:
        raise RuntimeError(f"${ENV_USER}={name} is root; PostgreSQL refuses to run as root")
    return _User(name, entry.pw_uid, entry.pw_gid)


def postgres_unavailable() -> str | None:
    """Why a test PostgreSQL server cannot be started here, or None when it can."""
    if postgres_bindir() is None:
        override = os.environ.get(ENV_BINDIR)
        where = (
            f"${ENV_BINDIR}={override}"
            if override is not None
            else "`pg_config --bindir`, PATH or /usr/lib/postgresql/*/bin"
        )
        return (
            f"PostgreSQL server binaries ({', '.join(SERVER_PROGRAMS)}) not found in {where}: "
            "run ./scripts/bootstrap (or `apt-get install postgresql`)"
        )
    try:
        _server_user()
    except RuntimeError as exc:
        return str(exc)
    return None


def _require_bindir() -> Path:
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError(postgres_unavailable())
    return bindir


# ---------------------------------------------------------------------------------------------
# Running the programs as the right user


def _env() -> dict[str, str]:
    # PG* variables (PGDATA, PGPORT, PGHOST, ...) from the caller's shell would silently
    # redirect pg_ctl; C messages keep the log greppable.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _run(
    args: list[str],
    user: _User | None,
    *,
    cwd: Path,
    timeout: float,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program, as ``user`` when given; output captured, never raises on failure.

    The switch uses Popen's own ``user``/``group``/``extra_groups=[]``: the forked child
    calls setgroups([]), setregid and setreuid just before exec, the same system calls
    ``setpriv --reuid --regid --clear-groups`` makes, but with no extra program and, unlike
    ``runuser``/``su``, no PAM session (which can fail or log noise in containers). Every
    supplementary group of root is dropped. ``cwd`` must be reachable by that user, or
    pg_ctl warns that it cannot return to the directory it was started in.
    """
    return subprocess.run(
        args,
        user=user.uid if user else None,
        group=user.gid if user else None,
        extra_groups=[] if user else None,
        cwd=cwd,
        env=_env(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout + proc.stderr).strip()


def _write(path: Path, text: str, user: _User | None) -> None:
    """Write a file the server's user owns (a new file made by root would be root's)."""
    path.write_text(text)
    if user:
        os.chown(path, user.uid, user.gid)


def _check_reachable(path: Path, user: _User | None) -> None:
    """Fail clearly if ``user`` cannot traverse every directory down to ``path``."""
    if user is None:
        return
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        elif st.st_gid == user.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            raise RuntimeError(
                f"{directory} (mode {stat.filemode(st.st_mode)}) cannot be entered by user "
                f"{user.name!r}, which runs PostgreSQL because initdb refuses root: keep the "
                "server out of pytest's tmp_path, e.g. call running_postgres() without base_dir"
            )


def _own_dir(path: Path, user: _User | None) -> None:
    """Make ``path`` (if missing) and give it to ``user``, after checking it can get there."""
    if user:  # check before touching anything, then again for directories mkdir made
        _check_reachable(next(p for p in path.parents if p.exists()), user)
    path.mkdir(parents=True, exist_ok=True)
    if user:
        os.chown(path, user.uid, user.gid)
        _check_reachable(path, user)


def _scratch_root() -> str:
    """``$SPCMON_PG_TMPDIR``, else /dev/shm when it has room, else the temporary directory.

    On tmpfs a cluster copies in ~0.1 s every time; on this machine's ext4 disk the same
    1,300 files took 0.1-1.5 s, depending on writeback of the files made just before.
    A process crash (kill -9, immediate stop) loses nothing on tmpfs either, so crash
    recovery tests behave the same. Docker's default 64 MB /dev/shm is too small: skipped.
    """
    if configured := os.environ.get(ENV_TMPDIR):
        return configured
    with suppress(OSError):
        shm = os.statvfs("/dev/shm")
        if shm.f_bavail * shm.f_frsize >= 1 << 30 and os.access("/dev/shm", os.W_OK | os.X_OK):
            return "/dev/shm"
    return tempfile.gettempdir()


def make_private_dir(prefix: str = "spcmon-pg-") -> Path:
    """A fresh 0700 directory directly under :func:`_scratch_root`, owned by the server's
    user; the caller removes it (``shutil.rmtree``)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=_scratch_root()))
    _own_dir(path, _server_user())
    return path


# ---------------------------------------------------------------------------------------------
# Clusters


def _init_cluster(bindir: Path, data_dir: Path, user: _User | None) -> None:
    """initdb a cluster with the ``spcmon`` superuser, database and trust rules."""
    proc = _run(
        [
            str(bindir / "initdb"),
            "--pgdata",
            str(data_dir),
            "--username",
            ROLE,
            "--auth",
            "trust",
            "--no-sync",  # a throwaway cluster need not reach the disk (no fsync of 1,300 files)
            "--locale",
            "C",
            "--encoding",
            "UTF8",
            "--no-instructions",
        ],
        user,
        cwd=data_dir.parent,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"initdb failed (exit {proc.returncode}):\n{_output(proc)}")
    _write(data_dir / "pg_hba.conf", _HBA, user)
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write(f"\ninclude_if_exists '{_CONF_NAME}'  # spcmon test settings\n")
    # Single-user mode creates the database without a postmaster, a port or a socket.
    proc = _run(
        [str(bindir / "postgres"), "--single", "-F", "-D", str(data_dir), "template1"],
        user,
        cwd=data_dir.parent,
        timeout=120,
        input=f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n",
    )
    # The stand-alone backend exits 0 even when a statement fails: read its log too.
    if proc.returncode != 0 or re.search(r"\b(ERROR|FATAL|PANIC):", proc.stderr):
        raise RuntimeError(f"creating database {DATABASE!r} failed:\n{_output(proc)}")


_templates: dict[tuple[str, int | None], Path] = {}
_templates_lock = threading.Lock()


def _remove_templates(owner_pid: int) -> None:
    # A forked child inherits this handler and the dict; only the creator cleans up.
    if os.getpid() == owner_pid:
        for data_dir in _templates.values():
            shutil.rmtree(data_dir.parent, ignore_errors=True)


def _template(bindir: Path, user: _User | None) -> Path:
    """This process's template cluster for ``bindir``: made on first use, removed at exit.

    Per process, so pytest-xdist workers each build their own and never share files.
    """
    key = (str(bindir), user.uid if user else None)
    with _templates_lock:
        data_dir = _templates.get(key)
        if data_dir is None or not (data_dir / "PG_VERSION").exists():
            if not _templates:
                atexit.register(_remove_templates, os.getpid())
            base = make_private_dir("spcmon-pg-template-")
            data_dir = base / "data"
            try:
                _init_cluster(bindir, data_dir, user)
            except BaseException:
                shutil.rmtree(base, ignore_errors=True)
                raise
            _templates[key] = data_dir
        return data_dir


def _copy_cluster(source: Path, dest: Path, user: _User | None) -> None:
    # `cp -a` run as the server's user: the copy is owned by it with no chown pass, keeps
    # the 0700 modes postgres insists on, and is about twice as fast as shutil.copytree.
    proc = _run(["cp", "-a", str(source), str(dest)], user, cwd=dest.parent, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"copying the template cluster failed:\n{_output(proc)}")


def _conf_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# The server


class PostgresServer:
    """One PostgreSQL cluster under ``base_dir``: ``data/``, ``socket/``, ``postgres.log``.

    Nothing happens until :meth:`start`, which creates the cluster if it does not exist yet
    (a copy of the template, or initdb when ``use_template`` is false). The data outlives
    :meth:`stop`, :meth:`kill` and :meth:`restart`; the directory is the caller's to remove.
    ``settings`` are extra ``postgresql.conf`` values over :data:`FAST_SETTINGS`; changes to
    :attr:`settings` take effect at the next start.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        use_template: bool = True,
        timeout_s: float = 30.0,
    ) -> None:
        self.bindir = _require_bindir()
        self._user = _server_user()
        self.base_dir = base_dir.absolute()
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_path = self.base_dir / "postgres.log"
        self.port = port or free_port()
        self.settings: dict[str, str] = {**FAST_SETTINGS, **(settings or {})}
        self.use_template = use_template
        self.timeout_s = timeout_s
        self._port_chosen = port is not None
        self._started_before = False

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def dsn(self) -> str:
        """libpq URI for the ``spcmon`` database as the ``spcmon`` superuser, over TCP."""
        return f"postgresql://{ROLE}@{self.host}:{self.port}/{DATABASE}"

    def _pg_ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return _run(
            [str(self.bindir / "pg_ctl"), "--pgdata", str(self.data_dir), *args],
            self._user,
            cwd=self.base_dir,
            timeout=timeout,
        )

    def _create(self) -> None:
        _own_dir(self.base_dir, self._user)
        if not (self.data_dir / "PG_VERSION").exists():
            shutil.rmtree(self.data_dir, ignore_errors=True)  # leftovers of a failed create
            if self.use_template:
                _copy_cluster(_template(self.bindir, self._user), self.data_dir, self._user)
            else:
                _init_cluster(self.bindir, self.data_dir, self._user)
        _own_dir(self.socket_dir, self._user)

    def _write_conf(self) -> None:
        values = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "TimeZone": "UTC",
            **self.settings,
        }
        _write(
            self.data_dir / _CONF_NAME,
            "".join(f"{key} = {_conf_value(value)}\n" for key, value in values.items()),
            self._user,
        )

    def log_tail(self, lines: int = 30, *, since: int = 0) -> str:
        """The last ``lines`` lines of the server log (from byte offset ``since``)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:])

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def start(self) -> None:
        """Start the server and wait until it accepts connections; no-op if running.

        On failure the error carries pg_ctl's output and the tail of the server log.
        """
        if self.is_running():
            return
        self._create()
        for _attempt in range(3):
            self._write_conf()
            log_start = self._log_size()
            proc = self._pg_ctl(
                "start",
                "--wait",
                "--timeout",
                str(max(1, round(self.timeout_s))),
                "--log",
                str(self.log_path),
                timeout=self.timeout_s + 10,
            )
            if proc.returncode == 0:
                self._started_before = True
                return
            tail = self.log_tail(since=log_start)
            with suppress(subprocess.SubprocessError):  # a late postmaster must not linger
                self._pg_ctl("stop", "--mode", "immediate", "--wait", timeout=30)
            # free_port() only says the port was free a moment ago; another process may
            # have taken it since. Pick another, unless a client may already hold the DSN.
            if "could not bind" in tail and not (self._port_chosen or self._started_before):
                self.port = free_port()
                continue
            break
        raise RuntimeError(
            f"PostgreSQL did not start (pg_ctl exit {proc.returncode}, port {self.port}, "
            f"data {self.data_dir}):\n{_output(proc)}\n--- {self.log_path} (tail) ---\n{tail}"
        )

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server and wait for it; no-op if not running.

        ``fast`` rolls back open transactions and disconnects clients at once, then
        checkpoints; ``immediate`` (see :meth:`kill`) skips the checkpoint like a crash.
        """
        if not self.is_running():
            return
        proc = self._pg_ctl(
            "stop",
            "--mode",
            mode,
            "--wait",
            "--timeout",
            str(max(1, round(self.timeout_s))),
            timeout=self.timeout_s + 10,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"pg_ctl stop -m {mode} failed (exit {proc.returncode}):\n{_output(proc)}\n"
                f"--- {self.log_path} (tail) ---\n{self.log_tail()}"
            )

    def kill(self) -> None:
        """Stop abruptly (``immediate`` mode): no shutdown checkpoint, so the next start
        runs crash recovery from the WAL, as after a power cut of the server process."""
        self.stop("immediate")

    def restart(self) -> None:
        """Stop (fast) and start again on the same port, with the same data."""
        self.stop()
        self.start()

    def is_running(self) -> bool:
        """Whether a postmaster is running for this data directory."""
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        # pg_ctl status: 0 running, 3 not running, 4 no accessible data directory.
        return self._pg_ctl("status", timeout=30).returncode == 0

    def __repr__(self) -> str:
        return f"PostgresServer({self.dsn!r}, data_dir={str(self.data_dir)!r})"


@contextmanager
def running_postgres(
    base_dir: Path | None = None,
    *,
    port: int | None = None,
    settings: Mapping[str, str] | None = None,
    use_template: bool = True,
) -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer`, stopped (fast) on exit.

    Without ``base_dir`` the server lives in a new private directory under /dev/shm or the
    temporary directory (reachable by the unprivileged user when we are root), removed on
    exit. A ``base_dir`` given is kept; under root every directory above it must be
    enterable by the server's user, which pytest's ``tmp_path`` is not.
    """
    if reason := postgres_unavailable():
        raise RuntimeError(reason)
    own_dir = base_dir is None
    base = make_private_dir() if base_dir is None else base_dir
    try:
        server = PostgresServer(base, port=port, settings=settings, use_template=use_template)
        server.start()
        try:
            yield server
        finally:
            try:
                server.stop()
            except BaseException:
                with suppress(Exception):
                    server.kill()
                raise
    finally:
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)
