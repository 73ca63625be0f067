"""SIGINT/SIGTERM end a run cleanly: the current outer iteration finishes, a checkpoint is saved.

A signal handler only records the request; the run loop checks it between outer iterations (a
compiled iteration cannot be interrupted half-way without losing it), saves a checkpoint of the
state reached and raises `RunInterrupted`. The command line then exits with the shell's
convention, 128 + signal number (130 for Ctrl-C, 143 for SIGTERM), and running the same command
again resumes. SIGKILL cannot be caught: resumption then starts from the last periodic checkpoint.
"""
from __future__ import annotations

import signal
import threading
from typing import Any


class RunInterrupted(Exception):
    """The run stopped on a signal after saving a checkpoint of `iteration`."""

    def __init__(self, signum: int, iteration: int, checkpoint_dir: str):
        self.signum, self.iteration = signum, iteration
        super().__init__(f"stopped by {signal.Signals(signum).name} after iteration {iteration}; checkpoint "
                         f"saved in {checkpoint_dir}; run the same command again to resume")


class StopRequests:
    """Context manager: while active, SIGINT and SIGTERM are recorded in `.signum` instead of killing.

    Handlers can only be installed from the main thread; elsewhere (e.g. a run started from a worker
    thread) signals keep their default behaviour and `.signum` stays None.
    """
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _record(self, signum, frame) -> None:
        self.signum = signum

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._record)
        return self

    def __exit__(self, *exc_info) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
