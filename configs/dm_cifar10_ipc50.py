"""CIFAR-10, 50 images per class by distribution matching, the authors' main_DM.py defaults
(`python main_DM.py --dataset CIFAR10 --model ConvNet --ipc 50 --dsa_strategy color_crop_cutout_flip_scale_rotate
--init real --lr_img 1 --num_exp 5 --num_eval 5`):

    python bin/condense.py --config=configs/dm_cifar10_ipc50.py      # workdir: runs/dm_cifar10_ipc50
    python bin/condense.py --config=configs/dm_cifar10_ipc50.py --config.ipc=10

Expected accuracy: the authors' 63.0% (ipc 1 / 10 / 50: 26.0 / 48.9 / 63.0), K=20000, evaluated
with DiffAugment for 1000 epochs. Any ipc works (no inner loop). Runtime: not measured on CIFAR-10
(it needs an accelerator at this budget). On a 2-core AMD EPYC, one DM iteration at Fashion-MNIST
shapes (batch_real 256) took 5.2 s at ipc 1 and 8.6 s at ipc 50, against 13.3 s for a DC ipc-1
iteration (`python bin/bench.py --methods`, benchmarks/results/bench_cpu_methods.md): K=20000 at
those shapes would take about 29-48 hours on that CPU.
"""
from configs import common


def get_config():
    return common.dm_setting("cifar10", 50)
