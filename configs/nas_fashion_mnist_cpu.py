"""Architecture search on Fashion-MNIST at a CPU budget (a 2-core CPU finishes it in about 2 hours):

    python bin/nas.py --config=configs/nas_fashion_mnist_cpu.py \
        --config.data_dir=/path/to/fashion_mnist.npz \
        --config.condensed_set=runs/nas_fmnist_condense/synthetic      # optional

Budget, NOT the paper's, cut to what a 2-core AMD EPYC finishes in ~2 h (measured before the run:
one width-32 candidate trains its 2 networks on a 100-image proxy in ~35 s, early stopping in
~75 s, both with compilation and scoring; width 64 costs ~2.4x that, so the grid stays at width 32):
- a 12-ConvNet sub-grid instead of 720: W 32, D 1/2/3, norm instance/batch, activation
  relu/sigmoid, pooling avg (sigmoid and depth give the grid a spread of accuracies to rank);
- proxies of 10 images per class trained 100 epochs (the paper's), 2 networks per candidate; top 5;
- ground truth 'all': every candidate trained on the whole training split, 1 network for
  2 epochs (the recipe's E=1 runs E+1), so Spearman over the whole grid is reported too;
- herding's feature network ConvNet width 32 trained 2 epochs;
- the dcjax proxy condensed by the search with the default ConvNet (width 128) at the CPU
  protocol's ipc-10 setting (batch_real 64) but K=5 outer iterations instead of its 10 (~6 min
  each here) and init real instead of noise: 5 iterations from noise leave images worse than
  random real ones (from noise, K=10 reaches 73.4 against random real's 73.0,
  benchmarks/results/cpu_protocol_fashion_mnist.md), so at this budget the condensed proxy is
  random real images refined by 50 gradient-matching steps; the paper's K=1000 takes days here.
`python -m benchmarks.nas_fashion_mnist` runs it and writes its figures, command and wall time to
benchmarks/results/nas_fashion_mnist.md: 4969 s (83 min) at c2aa8a2 on a 2-core AMD EPYC, of which
building the proxies (herding, the K=5 condensation) 38 min (an upper bound, see the md), training
every candidate on the four proxies 24 min, the whole-set ground truth 21 min.
"""
from configs import common, cpu_protocol


def get_config():
    c = common.nas_setting("fashion_mnist")
    c.space.width = (32,)
    c.space.depth = (1, 2, 3)
    c.space.norm = ("instance", "batch")
    c.space.activation = ("relu", "sigmoid")
    c.space.pooling = ("avg",)
    c.seeds = 2
    c.top_k = 5
    c.ground_truth = "all"
    c.whole.epochs = 1
    c.whole.seeds = 1
    c.herding.width = 32
    c.herding.epochs = 2
    c.condense = cpu_protocol.get_config("10")
    c.condense.num_iterations = 5
    c.condense.init = "real"
    c.condense.eval.num_models = 0
    return c
