"""Fashion-MNIST, 1 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/fashion_mnist_ipc1.py      # workdir: runs/fashion_mnist_ipc1

Expected accuracy: the paper's Table 1, 70.5 +- 0.6% (mean +- std over 5 sets x 20 networks); the
command condenses one set and evaluates it with 5 networks x 300 epochs.

Runtime on a 2-core AMD EPYC CPU: condensing takes about 2 hours. This is an estimate, not a
measurement of this config: K=1000 x the outer iteration measured for 28x28x1 images, ipc 1,
batch_real 256 (7.7 s, median of 3 runs; benchmarks/results/bench_cpu.md, `python bin/bench.py`),
leaving out compilation, checkpoints and logs. The evaluation that follows is the CPU protocol's
recipe, measured at about 3 minutes at ipc 1 ('dcjax eval s' in
benchmarks/results/cpu_protocol_fashion_mnist.md, at an older commit, with other jobs sharing the
machine). Not measured on an accelerator.
"""
from configs import common


def get_config():
    return common.paper_setting("fashion_mnist", 1)
