"""Class-incremental learning on CIFAR-100, the authors' repository's protocol (CL_DM.py):

    python bin/continual.py --config=configs/continual_cifar100.py [--config.steps=10]
                                                     # workdir: runs/continual_cifar100

100 classes in 5 (or 10) steps, class orders from seeds 0-4; a memory of 20 images per class
(random, herding, or condensed by dcjax on the step's classes with K=1000); after each step 3 fresh
ConvNets trained 1000 epochs on the memories of the classes seen so far, tested on those classes
(see configs/common.class_incremental_setting and dcjax/apps/class_incremental.py); the networks
train with DSA's DiffAugment, as the reference's.

Budget: 5 orders x 5 steps x (a memory, and 3 networks of 1000 epochs on up to 2 000 images) per
memory, plus 25 condensations of 20 classes at ipc 20; needs an accelerator (not measured with
dcjax yet).
"""
from configs import common


def get_config():
    return common.class_incremental_setting("cifar100")
