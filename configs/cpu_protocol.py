"""SPEC section 6's CPU protocol: Fashion-MNIST, ConvNet-128, batch_real 64, init noise, metric 'ours'.

    python bin/condense.py --config=configs/cpu_protocol.py:1  --workdir=runs/fmnist_cpu_ipc1
    python bin/condense.py --config=configs/cpu_protocol.py:10 --workdir=runs/fmnist_cpu_ipc10

The argument after ':' is the ipc: ipc 1 runs K=200 outer iterations, ipc 10 runs K=10; both are
evaluated with 5 fresh networks x 300 epochs without augmentation. Figures are reduced-budget, not
the paper's K=1000 setting. Data: ../shared/data/fashion_mnist.npz, else tensorflow-datasets.
"""
import os

from configs import common

_LOCAL_NPZ = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fashion_mnist.npz")


def get_config(arg: str = "1"):
    ipc = int(arg)
    c = common.get_config()
    c.dataset = "fashion_mnist"
    c.ipc = ipc
    c.num_iterations = {1: 200, 10: 10}.get(ipc, 10)
    c.batch_real = 64
    c.checkpoint_every = 10 if ipc == 1 else 1
    if os.path.exists(_LOCAL_NPZ):
        c.data_dir = os.path.abspath(_LOCAL_NPZ)
    return c
