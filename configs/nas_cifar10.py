"""Architecture search on CIFAR-10, the paper's setting (section 3.2, Table 4, Figure F5).

    python bin/nas.py --config=configs/nas_cifar10.py      # workdir: runs/nas_cifar10

720 ConvNets (W 32-256, D 1-4, five normalisations, three activations, three poolings) trained
100 epochs on each of four proxies (random, herding, dcjax at 10 images per class; early
stopping: the whole training split for the same SGD steps), 5 networks each, scored on 5 000
held-out training images; the top 10 of each proxy trained on the other 45 000 images (50 epochs,
5 networks). The dcjax proxy is condensed first by the search itself (the paper's K=1000 CIFAR-10
ipc-10 setting, on the 45 000 images), unless --config.condensed_set names a saved set.

Budget: 4 x 720 x 5 = 14 400 proxy trainings of 101 SGD steps each, up to 40 x 5 whole-set
trainings of 50 epochs, and one condensation; the paper reports 18.8 minutes per proxy and 8604
minutes for whole-set training of all 720 on a GTX 1080 Ti. Not measured with dcjax yet (it needs
an accelerator); the reduced CPU budget is configs/nas_fashion_mnist_cpu.py.

Paper's figures (Table 4): best selected architecture 76.2 / 76.2 / 84.5 / 84.5 % (random,
herding, dcjax, early stopping) against 85.9 % for whole-set search; Spearman's rho of the top 10
-0.21 / -0.20 / 0.79 / 0.42.
"""
from configs import common


def get_config():
    return common.nas_setting("cifar10")
