"""CIFAR-100, 10 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/cifar100_ipc10.py      # workdir: runs/cifar100_ipc10

Expected accuracy: the paper's Table 1, 25.2 +- 0.3% (mean +- std over 5 sets x 20 networks); the
command condenses one set and evaluates it with 5 networks x 300 epochs.

Runtime: not measured (100 classes of 32x32x3 images, ipc 10). `python bin/bench.py`
(benchmarks/results/bench_cpu.md) reads this setting's XLA memory from compilation only, not a whole
outer iteration; one outer iteration is timed, from the repository root, by

    python -m benchmarks.benchmark '{"kind": "outer", "classes": 100, "image": [32, 32, 3], "ipc": 10, "repeats": 1}'

and K=1000 of them are the condensing time. The evaluation has not been measured either.

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
