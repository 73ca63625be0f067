"""Quickstart: scikit-learn's bundled 8x8 digits, 1 image per class, no download needed.

    python bin/condense.py --config=configs/digits.py --workdir=runs/digits

Reduced budget for a 2-core CPU: K=200 outer iterations, batch_real 64 (a digits class has only
~135 training images), evaluation of 5 ConvNets x 300 epochs, and the same evaluation of 1 random
real image per class for comparison (both in runs/digits/summary.json). There is no paper figure
for this dataset.

Measured by `python -m benchmarks.quickstart_digits` (the same run from a fresh workdir; figures,
commit and CPU in benchmarks/results/quickstart_digits.md): on a 2-core AMD EPYC CPU the whole
command takes about 2 minutes, of which condensing (compilation included) about 1.5 minutes, and
the condensed set trains clearly better networks than 1 random real image per class (about 89%
against 68% test accuracy, mean over the 5 networks).

ConvNet depth 2, not 3: on 8x8 inputs a depth-3 ConvNet instance-normalises 2x2 feature maps in
its last block (4 values per channel), which makes the per-class gradients nearly orthogonal.
Measured during development (recorded with commit 5cf771f; one run each, not in benchmarks/results/)
with depth 3: matching loss stuck at ~370 of a possible ~394 and 15.5% test accuracy, below random
real images (65.3%); depth 2 and depth 1 reached 88.6% and 90.7% at K=100. Depth 2 is also what an
unset depth resolves to for 8x8 images (`dcjax.nets.convnet.default_depth`); it is kept explicit
here because the figures above were measured with it.
"""
from configs import common


def get_config():
    c = common.get_config()
    c.dataset = "digits"
    c.ipc = 1
    c.net.depth = 2
    c.num_iterations = 200
    c.batch_real = 64
    c.checkpoint_every = 50
    c.log_every = 20
    c.eval.compare_random = True
    return c
