"""CIFAR-100, 10 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/cifar100_ipc10.py --workdir=runs/cifar100_ipc10

Paper Table 1: 25.2 +- 0.3% test accuracy (mean +- std, 5 sets x 20 networks) on an accelerator.
At K=1000 this takes hours on a CPU; see benchmarks/ for measured reduced-budget figures.
"""
from configs import common


def get_config():
    return common.paper_setting("cifar100", 10)
