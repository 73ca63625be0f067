"""Quickstart: scikit-learn's bundled 8x8 digits, 10 images per class, no download needed.

    python bin/condense.py --config=configs/digits.py --workdir=runs/digits

Reduced budget for a 2-core CPU (the README gives the measured accuracy and time against random
real images of the same size): K=100 outer iterations, batch_real 64 (a digits class has only
~135 training images), evaluation of 5 ConvNets x 300 epochs.
"""
from configs import common


def get_config():
    c = common.get_config()
    c.dataset = "digits"
    c.ipc = 10
    c.num_iterations = 100
    c.batch_real = 64
    c.checkpoint_every = 20
    return c
