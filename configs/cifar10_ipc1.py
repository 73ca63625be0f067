"""CIFAR-10, 1 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/cifar10_ipc1.py --workdir=runs/cifar10_ipc1

Paper Table 1: 28.3 +- 0.5% test accuracy (mean +- std, 5 sets x 20 networks) on an accelerator.
At K=1000 this takes hours on a CPU; see benchmarks/ for measured reduced-budget figures.
"""
from configs import common


def get_config():
    return common.paper_setting("cifar10", 1)
