"""CIFAR-100, 10 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/cifar100_ipc10.py      # workdir: runs/cifar100_ipc10

Expected accuracy: the paper's Table 1, 25.2 +- 0.3% (mean +- std over 5 sets x 20 networks); the
command condenses one set and evaluates it with 5 networks x 300 epochs.

Runtime: one outer iteration (10 matching steps of 100 classes x 256 real images, with 9 network
updates of 50 epochs on the 1000 synthetic images between them), timed from the repository root by

    python -m benchmarks.benchmark '{"kind": "outer", "classes": 100, "image": [32, 32, 3], "ipc": 10, "repeats": 1, "warmup": false, "mode": "map"}'

took 1168 s on a 2-core Intel Xeon (2026-12-03, one run at 6d73e19; compilation 6.2 s, peak memory
2.34 GB), so K=1000 of them ~13.5 days of condensing on such a CPU: this setting is for GPUs and
TPUs. `python bin/bench.py` (benchmarks/results/bench_cpu.md) reads its XLA memory from compilation
only. The evaluation has not been measured.

class_chunk 10: vmapping all 100 classes x 256 real images needs ~76 GB of XLA scratch memory; 10
classes at a time needs ~8.7 GB for the whole outer step (compile-only rows of
benchmarks/results/bench_cpu.md), which fits a 16 GB accelerator. It does not change the result. (On
CPU, class_parallel 'auto' runs the 100 classes one at a time in a `lax.map`, where class_chunk has
no effect: unrolled, an ipc-1 outer iteration took 154 s and 5.8 GB of memory to compile, for a
step 3 % faster, 40.4 against 41.7 s; `python bin/bench.py --classes`,
benchmarks/results/bench_cpu_classes.md.)
"""
from configs import common


def get_config():
    c = common.paper_setting("cifar100", 10)
    c.class_chunk = 10
    return c
