"""CIFAR-100, 1 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/cifar100_ipc1.py      # workdir: runs/cifar100_ipc1

Expected accuracy: the paper's Table 1, 12.8 +- 0.3% (mean +- std over 5 sets x 20 networks); the
command condenses one set and evaluates it with 5 networks x 300 epochs.

Runtime: one outer iteration, timed from the repository root by

    python -m benchmarks.benchmark '{"kind": "outer", "classes": 100, "image": [32, 32, 3], "ipc": 1, "repeats": 1, "mode": "map"}'

took 42.4 s on a 2-core Intel Xeon (2026-12-03, one run, the code of 2dbc69b; compilation 3.8 s,
peak memory 1.75 GB), so K=1000 of them ~12 hours of condensing on such a CPU; with "mode":
"unroll" 41.9 s, but 169 s and 5.9 GB to compile (the same pair in
benchmarks/results/bench_cpu_classes.md, at 69e9632: 41.72 / 40.44 s). `python bin/bench.py`
(benchmarks/results/bench_cpu.md) reads this setting's XLA memory from compilation only. The evaluation (5 networks x 300 epochs on the 100 images, then
10 000 test images, no augmentation, as one program), timed by

    python -m benchmarks.benchmark '{"kind": "eval", "classes": 100, "image": [32, 32, 3], "ipc": 1, "num_models": 5, "epochs": 300, "mode": "map", "test_images": 10000, "repeats": 1, "warmup": false}'

took 261 s on the same machine (2026-12-03, one run at 3abc140; compilation 2.7 s).

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
    c = common.paper_setting("cifar100", 1)
    c.class_chunk = 10
    return c
