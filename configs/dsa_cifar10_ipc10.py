"""CIFAR-10, 10 images per class with DSA (Differentiable Siamese Augmentation), the authors' README
command `python main.py --dataset CIFAR10 --model ConvNet --ipc 10 --init real --method DSA
--dsa_strategy color_crop_cutout_flip_scale_rotate`:

    python bin/condense.py --config=configs/dsa_cifar10_ipc10.py      # workdir: runs/dsa_cifar10_ipc10
    python bin/condense.py --config=configs/dsa_cifar10_ipc10.py --config.dataset=fashion_mnist --config.ipc=1

Expected accuracy: the authors' 52.1% (their README; ipc 1 / 10 / 50: 28.8 / 52.1 / 60.6; other
datasets in configs/common.DSA_TABLE), K=1000, evaluated with DiffAugment for 1000 epochs. For MNIST
and SVHN also set --config.dsa_strategy=color_crop_cutout_scale_rotate (no flip for digits).
Runtime: not measured with dcjax yet (it needs an accelerator at this budget).
"""
from configs import common


def get_config():
    return common.dsa_setting("cifar10", 10)
