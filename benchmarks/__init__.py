"""dcjax's benchmarks: not part of the library (nothing under dcjax/ imports them).

* `benchmark` measures one case (a compiled program's time, FLOPs and memory) in a fresh process,
  `bench_report` runs a suite of them and writes its tables (`python bin/bench.py`).
* `versus_authors` runs the authors' main.py / main_DM.py whole beside bin/condense.py and reads
  both logs (`program_logs`); docs/performance.md says how and what it found.
* `cpu_protocol` and `table1_fashion_mnist` reproduce paper figures under the CPU protocol
  (`python -m benchmarks.cpu_protocol`, `python -m benchmarks.table1_fashion_mnist`).
* `provenance` records the commit, tree state and machine in every results file (results/).
* explore/: the one-off measurements behind the engine's design (explore/NOTES.md).

Run everything from the repository root, which makes `benchmarks` and `configs` importable.
"""
