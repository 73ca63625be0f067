"""Orbax checkpoints of a condensation run; nothing here unpickles.

`checkpoints/<iteration>/` holds the condensation state (synthetic images, image-optimiser state,
PRNG key, iteration) plus the run's config as JSON, written by an Orbax `CheckpointManager`
(atomic: a half-written checkpoint is never taken for a finished one). Re-running the same command
resumes from the newest one.
"""
from __future__ import annotations

import os
from typing import Any

import orbax.checkpoint as ocp

from dcjax.errors import CheckpointError

CHECKPOINT_DIR = "checkpoints"


def damaged_checkpoint(path: str, err: Exception) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is damaged or incomplete ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
        f"delete that directory to resume from an earlier checkpoint, or use a new --workdir")


class RunCheckpoints:
    """The condensation checkpoints of one workdir."""

    def __init__(self, workdir: str, max_to_keep: int = 2):
        self.directory = os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR))
        self._manager = ocp.CheckpointManager(
            self.directory, item_names=("state", "meta"),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        self._manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        path = os.path.join(self.directory, str(step))
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        except (FileNotFoundError, ValueError, KeyError, OSError, TypeError) as err:
            raise damaged_checkpoint(path, err) from err
        return restored["state"], restored["meta"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
