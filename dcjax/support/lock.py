"""One run per workdir: an advisory `flock` on `<workdir>/.lock`, held for the whole run.

A second run pointed at the same workdir is refused with a one-line error instead of interleaving
its checkpoints with the first's. `flock` locks belong to the open file, so the kernel releases
them when the holding process exits in any way, SIGKILL included: a crashed run never leaves a
stale lock behind, and no pid file has to be cleaned up. (On network file systems without flock
support the lock is advisory at best; run one job per workdir there.)
"""
from __future__ import annotations

import fcntl
import os

from dcjax.errors import DcjaxError

LOCK_FILE = ".lock"


class WorkdirError(DcjaxError):
    """The workdir cannot be created or written."""


class WorkdirBusyError(DcjaxError):
    """Another process holds the workdir's lock."""


class WorkdirLock:
    """Context manager holding the exclusive lock of `workdir` (created if missing)."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, LOCK_FILE)
        self._fd: int | None = None

    def __enter__(self) -> "WorkdirLock":
        try:
            os.makedirs(self.workdir, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise WorkdirError(f"cannot use {self.workdir} as the workdir ({err.strerror}); give a --workdir "
                               f"that is (or can be created as) a writable directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WorkdirBusyError(f"another dcjax run (pid {holder}) is using {self.workdir}; wait for it to "
                                   f"finish or use another --workdir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
