"""Shared behaviour of the command-line scripts: user errors become one line and exit status 2;
a run stopped by SIGINT/SIGTERM (after saving a checkpoint) exits with 128 + the signal number.

Importing this module also puts the repository root on sys.path, so `configs.common` imports.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, TypeVar

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dcjax.errors import DcjaxError  # noqa: E402
from dcjax.support.signals import RunInterrupted  # noqa: E402

T = TypeVar("T")


def run_guarded(fn: Callable[[], T]) -> T:
    """Run `fn`; a DcjaxError is printed as `error: <message>` and exits with status 2."""
    try:
        return fn()
    except DcjaxError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except RunInterrupted as stopped:
        print(str(stopped), file=sys.stderr)
        sys.exit(128 + stopped.signum)
