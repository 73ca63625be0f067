"""Shared behaviour of the command-line scripts: user errors become one line and exit status 2;
a run stopped by SIGINT/SIGTERM (after saving a checkpoint, or at once on a second signal) exits
with 128 + the signal number;
absl logs warnings only unless --verbosity is given.

Importing this module also puts the repository root on sys.path, so `configs.common` imports.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable, TypeVar

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import flags, logging  # noqa: E402

from dcjax.errors import DcjaxError  # noqa: E402
from dcjax.support.signals import RunAborted, RunInterrupted  # noqa: E402

T = TypeVar("T")


def run_guarded(fn: Callable[[], T]) -> T:
    """Run `fn`; a DcjaxError is printed as `error: <message>` and exits with status 2."""
    try:
        return fn()
    except DcjaxError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except RunInterrupted as stopped:
        print(str(stopped), file=sys.stderr, flush=True)
        _exit_at_once_on_another_signal()
        sys.exit(128 + stopped.signum)
    except RunAborted as aborted:
        # Exit without waiting for the computation in flight (nothing of it is kept anyway).
        print(str(aborted), file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + aborted.signum)


def _exit_at_once_on_another_signal() -> None:
    """While the interpreter shuts down after a clean stop, another Ctrl-C ends it without a traceback."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda s, frame: os._exit(128 + s))


def default_workdir(config_argument: str) -> str:
    """runs/<config file name>[_<its argument>]: configs/cifar10_ipc10.py -> runs/cifar10_ipc10."""
    path, _, argument = config_argument.partition(":")
    name = os.path.splitext(os.path.basename(path))[0]
    return os.path.join("runs", f"{name}_{argument}" if argument else name)


def quiet_logging() -> None:
    """Log warnings and errors only, unless the user gave --verbosity (Orbax logs every save and
    load at INFO). Call it from `main`, after flags are parsed."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
