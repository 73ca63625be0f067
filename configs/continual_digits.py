"""Continual learning on SVHN -> MNIST -> USPS, the paper's setting (section 3.2, Figure 4).

    python bin/continual.py --config=configs/continual_digits.py --config.data_dir=/data/tfds
                                                      # workdir: runs/continual_digits

SVHN and MNIST come from tensorflow-datasets ('svhn_cropped', 'mnist', prepared in data_dir);
USPS has no tensorflow-datasets copy: put usps.npz (arrays x_train, y_train, x_test, y_test, uint8,
16x16 grey-scale, labels 0-9; e.g. converted from the usps.h5 of Kaggle's "USPS dataset") in the
same data_dir, where the loader finds it first. Every image is resized to 32x32 RGB.

Memory of 10 images per class per task, herding (E2E) vs condensed (dcjax, K=1000 on each task),
each with and without distillation, 5 repetitions; 5 000 + 500 steps per stage (see
configs/common.continual_setting). Budget: 3 condensations at the paper's ipc-10 setting plus
4 methods x 5 repetitions x 3 stages of 5 500 SGD steps; needs an accelerator (not measured with
dcjax yet). The reduced CPU run is configs/continual_cpu.py.

Paper's figures (Figure 4, T3): the condensed memory beats herding by 2.3 points without KD and by
less with KD; the figure's labelled values are 94.3, 94.5 and 94.8 %.
"""
from configs import common


def get_config():
    return common.continual_setting(("svhn", "mnist", "usps"))
