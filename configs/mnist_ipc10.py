"""MNIST, 10 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/mnist_ipc10.py      # workdir: runs/mnist_ipc10

Expected accuracy: the paper's Table 1, 97.4 +- 0.2% (mean +- std over 5 sets x 20 networks); the
command condenses one set and evaluates it with 5 networks x 1000 epochs with the reference's
crop/scale/rotate augmentation, as the paper does.

Runtime on a 2-core AMD EPYC CPU: condensing takes about 97 hours (4 days). This is an estimate, not
a measurement of this config: K=1000 x the outer iteration measured for 28x28x1 images, ipc 10,
batch_real 256 (349 s, one timed run; benchmarks/results/bench_cpu.md, `python bin/bench.py`),
leaving out compilation, checkpoints and logs. The evaluation (1000 epochs with augmentation) has
not been measured. Not measured on an accelerator.
"""
from configs import common


def get_config():
    return common.paper_setting("mnist", 10)
