"""SVHN (cropped digits), 50 image(s) per class: the paper's setting (ConvNet, K=1000, batch_real 256, init noise).

    python bin/condense.py --config=configs/svhn_ipc50.py --workdir=runs/svhn_ipc50

Paper Table 1: 82.3 +- 0.3% test accuracy (mean +- std, 5 sets x 20 networks) on an accelerator.
At K=1000 this takes hours on a CPU; see benchmarks/ for measured reduced-budget figures.
"""
from configs import common


def get_config():
    return common.paper_setting("svhn", 50)
