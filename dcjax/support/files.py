"""Atomic file writes: a result file is either the old one or the new one, never half written."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary sibling of `path` to write (a file or a directory); on success it is
    renamed onto `path`, on failure removed, so readers never see a partial result.

    The temporary name keeps `path`'s extension, since writers such as `np.savez` and PIL pick
    their format (or append a suffix) from it.
    """
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp-{os.getpid()}{ext}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str, payload: Any) -> str:
    """`payload` as indented, key-sorted JSON at `path`, atomically; returns the path."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    return path


def write_text(path: str, text: str) -> str:
    """`text` at `path`, atomically; returns the path."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
    return path
