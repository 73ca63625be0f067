"""SPEC section 6's CPU protocol: Fashion-MNIST, ConvNet-128, batch_real 64, init noise, metric 'ours'.

    python bin/condense.py --config=configs/cpu_protocol.py:1  --workdir=runs/fmnist_cpu_ipc1 \
        --config.data_dir=/path/to/fashion_mnist.npz
    python bin/condense.py --config=configs/cpu_protocol.py:10 --workdir=runs/fmnist_cpu_ipc10 \
        --config.data_dir=/path/to/fashion_mnist.npz

The argument after ':' is the ipc: ipc 1 runs K=200 outer iterations, ipc 10 runs K=10; both are
evaluated with 5 fresh networks x 300 epochs without augmentation. Figures are reduced-budget, not
the paper's K=1000 setting.

Data, found as for every config (`dcjax.data.load`): --config.data_dir names an offline copy (a
fashion_mnist.npz with x_train, y_train, x_test, y_test, a directory holding it, or the IDX files);
without it, a prepared tensorflow-datasets copy in the default tensorflow-datasets directory.
"""
from configs import common


def get_config(arg: str = "1"):
    ipc = int(arg)
    c = common.get_config()
    c.dataset = "fashion_mnist"
    c.ipc = ipc
    c.num_iterations = {1: 200, 10: 10}.get(ipc, 10)
    c.batch_real = 64
    c.checkpoint_every = 10 if ipc == 1 else 1
    return c
