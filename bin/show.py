#!/usr/bin/env python
"""Summarise a run and write its synthetic images as a PNG grid: python bin/show.py <workdir> [--grid=x.png]"""
import _common
from absl import app, flags

_GRID = flags.DEFINE_string("grid", None, "Where to write the PNG grid (default: <workdir>/images/final.png).")


def main(argv):
    if len(argv) != 2:
        raise app.UsageError("usage: python bin/show.py <workdir> [--grid=path.png]")
    _common.quiet_logging()   # Orbax logs every step of loading the set at INFO
    from dcjax.support.workdir_summary import describe_run
    for line in _common.run_guarded(lambda: describe_run(argv[1], _GRID.value)):
        print(line)


if __name__ == "__main__":
    app.run(main)
