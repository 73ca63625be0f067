"""Stopping a run: the first SIGINT/SIGTERM ends it cleanly, a second one at once.

The first signal only records the request; the run loop checks it between outer iterations (a
compiled iteration cannot be stopped half-way without losing it), saves a checkpoint of the state
reached and raises `RunInterrupted`. Since an iteration can take minutes on a CPU, a second signal
does not wait: it raises `RunAborted` straight away, and the newest checkpoint already on disk is
kept (Orbax writes checkpoints atomically, so one being written when the process dies is never
taken for a finished one). The command line exits with the shell's convention, 128 + signal number
(130 for Ctrl-C, 143 for SIGTERM); running the same command again resumes. SIGKILL cannot be
caught: resumption then starts from the last periodic checkpoint.

Python runs signal handlers only when the main thread executes Python code, never while it waits
inside a compiled computation; `wait_until_ready` therefore waits for results in short sleeps, so
that both signals are seen at once. With several processes, `StopRequests.agreed` makes every
process stop after the same iteration (any process's request stops all), so none is left waiting
in a collective checkpoint save for a peer that has already gone.
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Any

import jax
import numpy as np

POLL_SECONDS = 0.05


class RunInterrupted(Exception):
    """The run stopped on a signal after saving a checkpoint of `iteration`."""

    def __init__(self, signum: int, iteration: int, checkpoint_dir: str):
        self.signum, self.iteration = signum, iteration
        super().__init__(f"stopped by {signal.Signals(signum).name} after iteration {iteration}; checkpoint "
                         f"saved in {checkpoint_dir}; run the same command again to resume")


class RunAborted(Exception):
    """A second stop signal: the run ends now, without finishing the iteration in progress."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped at once by a second {signal.Signals(signum).name}; the newest checkpoint "
                         f"on disk is kept; run the same command again to resume from it")


class StopRequests:
    """Context manager: while active, a first SIGINT/SIGTERM is recorded in `.signum` and a second
    raises `RunAborted`.

    Handlers can only be installed from the main thread; elsewhere (e.g. a run started from a worker
    thread) signals keep their default behaviour and `.signum` stays None.
    """
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _record(self, signum, frame) -> None:
        if self.signum is not None:
            raise RunAborted(signum)
        self.signum = signum

    def agreed(self) -> int | None:
        """The signal to stop on, decided by all processes together: every process calls this after
        the same iteration, and any process's request stops them all."""
        if jax.process_count() == 1:
            return self.signum
        from jax.experimental import multihost_utils
        requests = multihost_utils.process_allgather(np.asarray(self.signum or 0, np.int32))
        return int(np.max(requests)) or None

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._record)
        return self

    def __exit__(self, *exc_info) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()


def wait_until_ready(tree: Any) -> Any:
    """Block until every array of `tree` is computed, returning to Python every POLL_SECONDS so that
    signal handlers (and Ctrl-C) run while a long computation is in flight; returns `tree`."""
    for leaf in jax.tree_util.tree_leaves(tree):
        if isinstance(leaf, jax.Array):
            while not leaf.is_ready():
                time.sleep(POLL_SECONDS)
    return tree
