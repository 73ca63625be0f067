"""A resumable log of finished units of work: one JSON line per unit, appended and flushed at once.

Long application runs (architecture search, continual learning) record every finished unit (a
candidate on a proxy, a memory at a step) as soon as it is done, so that a killed run started again
does only what is missing. The first line holds the run's fingerprint (the settings that decide the
results); a log written under another fingerprint is refused rather than mixed.
"""
from __future__ import annotations

import json
import os
from typing import Any, Sequence

from dcjax.errors import ConfigError
from dcjax.support.files import atomic_path


class ResultsLog:
    """Finished rows of `path`, keyed by the values of `key_fields`; a line cut short by a kill is
    ignored on reading (that unit runs again)."""

    def __init__(self, path: str, fingerprint: dict[str, Any], key_fields: Sequence[str]):
        self.path = path
        self.key_fields = tuple(key_fields)
        self.rows: dict[tuple, dict[str, Any]] = {}
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        header = {"fingerprint": fingerprint}
        if os.path.exists(path):
            with open(path) as f:
                lines = f.read().splitlines()
            try:
                first = json.loads(lines[0]) if lines else None
            except json.JSONDecodeError:
                first = None
            if first is not None and first.get("fingerprint") != json.loads(json.dumps(fingerprint)):
                raise ConfigError(f"{path} holds a run with other settings ({first.get('fingerprint')}); "
                                  f"use the original config or a new --workdir")
            for line in lines[1:]:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue   # the line a kill cut short
                self.rows[self.key(row)] = row
        self._rewrite_clean(header)

    def key(self, row: dict[str, Any]) -> tuple:
        return tuple(row[field] for field in self.key_fields)

    def _rewrite_clean(self, header: dict[str, Any]) -> None:
        """The header and every complete row, without a torn last line, written atomically."""
        with atomic_path(self.path) as tmp, open(tmp, "w") as f:
            f.write(json.dumps(header) + "\n")
            for row in self.rows.values():
                f.write(json.dumps(row) + "\n")

    def done(self, *key: Any) -> bool:
        return tuple(key) in self.rows

    def append(self, row: dict[str, Any]) -> None:
        self.rows[self.key(row)] = row
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
