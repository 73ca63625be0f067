"""Continual learning at a CPU budget, on the offline data: Fashion-MNIST -> USPS -> scikit-learn
digits, every image at 32x32 RGB. NOT the paper's sequence (SVHN -> MNIST -> USPS,
configs/continual_digits.py): these are the three ten-class datasets available offline, and
Fashion-MNIST's ten classes are clothes, not digits, so its labels share only their numbers with
the later tasks.

    python bin/continual.py --config=configs/continual_cpu.py --config.data_dir=/path/to/data
                                        # data_dir holds fashion_mnist.npz and usps.npz

Budget, NOT the paper's: ConvNet width 32 (not 128) for the continual network and for condensing;
500 training steps (not 5 000) and 100 fine-tuning steps (not 500) per stage at batch 128; 450 test
images per task (the digits' whole test split; the paper: 2 000); 3 repetitions (not 5); each
condensed memory with K=20 outer iterations at batch_real 64 (not K=1000 at 256).
`python -m benchmarks.continual_cpu` runs it and writes its figures, command and wall time to
benchmarks/results/continual_cpu.md.
"""
from configs import common


def get_config():
    c = common.continual_setting(("fashion_mnist", "usps", "digits"))
    c.net.width = 32
    c.train.steps = 500
    c.finetune.steps = 100
    c.batch_size = 128
    c.test_per_task = 450
    c.repetitions = 3
    c.condense.net.width = 32
    c.condense.num_iterations = 20
    c.condense.batch_real = 64
    c.condense.checkpoint_every = 5
    return c
