"""The CPU protocol: a reduced budget that fits a 2-core CPU, on Fashion-MNIST with ConvNet-128,
batch_real 64, init noise and metric 'ours'.

    python bin/condense.py --config=configs/cpu_protocol.py:1  --config.data_dir=/path/to/fashion_mnist.npz
    python bin/condense.py --config=configs/cpu_protocol.py:10 --config.data_dir=/path/to/fashion_mnist.npz

(workdirs runs/cpu_protocol_1 and runs/cpu_protocol_10). The argument after ':' is the ipc: ipc 1
runs K=200 outer iterations, ipc 10 runs K=10; both are evaluated with 5 fresh networks x 300
epochs without augmentation. Reduced budget, not the paper's K=1000 setting.
`python -m benchmarks.cpu_protocol --ipc 1 --ipc 10` (from the repository root) runs both and also
evaluates as many random real images per class with the same networks' keys.

Measured with that script on a 2-core AMD EPYC CPU, one run each; figures and the commit of each
row in benchmarks/results/cpu_protocol_fashion_mnist.md:

* ipc 1: condensing takes about 10-15 minutes on that CPU (a session-to-session spread of the same
  machine type; 778 s at 2cc65d8), evaluation about 3 minutes per set; the test accuracy reaches
  the paper's K=1000 figure (70.5 +- 0.6%) and beats 1 random real image per class by about 19 points.
* ipc 10: condensing takes about 50 minutes (2975 s at 2cc65d8), evaluation about 15 minutes per
  set; at K=10 the set is far below the paper's K=1000 figure (82.3 +- 0.4%) and level with 10
  random real images per class (within one standard deviation).

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
