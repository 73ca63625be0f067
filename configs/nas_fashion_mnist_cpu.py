"""Architecture search on Fashion-MNIST at a CPU budget (a 2-core CPU finishes it in hours):

    python bin/nas.py --config=configs/nas_fashion_mnist_cpu.py \
        --config.data_dir=/path/to/fashion_mnist.npz \
        --config.condensed_set=runs/nas_fmnist_condense/synthetic      # optional

Budget, NOT the paper's: a 24-ConvNet sub-grid (W 32/64, D 2/3, norm none/instance/batch, relu,
pooling avg/max) instead of 720; proxies of 10 images per class trained 100 epochs, 2 networks per
candidate; top 5; whole-set training 3 epochs x 2 networks of every candidate (ground truth 'all',
so the rank correlation over the whole sub-grid is reported too); herding's feature network ConvNet
width 32, 2 epochs; the dcjax proxy condensed by the search with the CPU protocol's ipc-10 setting
(K=10, batch_real 64) on the training split. `python -m benchmarks.nas_fashion_mnist` runs it and
writes its figures, command and wall time to benchmarks/results/nas_fashion_mnist.md; not run yet
(hours on a 2-core CPU: the budget above is a first guess, to be cut to what such a run finishes).
"""
from configs import common, cpu_protocol


def get_config():
    c = common.nas_setting("fashion_mnist")
    c.space.width = (32, 64)
    c.space.depth = (2, 3)
    c.space.norm = ("none", "instance", "batch")
    c.space.activation = ("relu",)
    c.space.pooling = ("avg", "max")
    c.seeds = 2
    c.top_k = 5
    c.ground_truth = "all"
    c.whole.epochs = 3
    c.whole.seeds = 2
    c.herding.width = 32
    c.herding.epochs = 2
    c.condense = cpu_protocol.get_config("10")
    c.condense.eval.num_models = 0
    return c
