"""SVHN (cropped digits), 50 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/svhn_ipc50.py      # workdir: runs/svhn_ipc50

Expected accuracy: the paper's Table 1, 82.3 +- 0.3% (mean +- std over 5 sets x 20 networks); the
command condenses one set and evaluates it with 5 networks x 300 epochs.

Runtime: not measured (10 classes of 32x32x3 images, ipc 50). `python bin/bench.py`
(benchmarks/results/bench_cpu.md) times this setting's matching step, not a whole outer iteration;
one outer iteration is timed, from the repository root, by

    python -m benchmarks.benchmark '{"kind": "outer", "image": [32, 32, 3], "ipc": 50, "repeats": 1}'

and K=1000 of them are the condensing time. The evaluation has not been measured either.
"""
from configs import common


def get_config():
    return common.paper_setting("svhn", 50)
