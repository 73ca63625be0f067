"""Fashion-MNIST, 10 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/fashion_mnist_ipc10.py      # workdir: runs/fashion_mnist_ipc10

Expected accuracy: the paper's Table 1, 82.3 +- 0.4% (mean +- std over 5 sets x 20 networks); the
command condenses one set and evaluates it with 5 networks x 300 epochs.

Runtime on a 2-core AMD EPYC CPU: condensing takes about 97 hours (4 days). This is an estimate, not
a measurement of this config: K=1000 x the outer iteration measured for 28x28x1 images, ipc 10,
batch_real 256 (349 s, one timed run; benchmarks/results/bench_cpu.md, `python bin/bench.py`),
leaving out compilation, checkpoints and logs. The evaluation that follows is the CPU protocol's
recipe, measured at about 14 minutes at ipc 10 ('dcjax eval s' in
benchmarks/results/cpu_protocol_fashion_mnist.md, at an older commit). Not measured on an
accelerator.
"""
from configs import common


def get_config():
    return common.paper_setting("fashion_mnist", 10)
