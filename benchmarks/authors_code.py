"""The authors' own PyTorch code, timed on random data of the benchmark's shapes (optional: needs
torch and a checkout of https://github.com/VICO-UoE/DatasetCondensation).

    git clone https://github.com/VICO-UoE/DatasetCondensation ../DatasetCondensation
    pip install torch==2.13.0

What runs is theirs: `utils.py` and `networks.py` are imported from the checkout
(`DCJAX_AUTHORS_REPO`, default ../DatasetCondensation next to this repository), and the network
(`get_network`, the default ConvNet), `match_loss`, `get_loops`, `epoch`, `evaluate_synset` and
`TensorDataset` are called unchanged. main.py is a script, not functions, so its outer-iteration
body (main.py:147-215: fresh network, the class loop of matching with `get_images`, one image step,
the inner network update through a DataLoader) is copied here line for line; only the data are
random tensors of the real shapes. torchvision is imported by utils.py for `get_dataset` alone,
which is never called here; where it does not load (e.g. a CUDA build of torchvision beside a CPU
torch), an empty stand-in is installed and the result says so.

The issue that asked for this (performance) found a transcription ~10 % slower than the authors'
code, which flattered dcjax: hence their code itself, and their commit recorded with every figure.
"""
from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import statistics
import subprocess
import sys
import time
import types
from typing import Any, Callable

import numpy as np

REPO_ENV = "DCJAX_AUTHORS_REPO"
DEFAULT_REPO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "DatasetCondensation")


def repo_path() -> str:
    return os.path.abspath(os.environ.get(REPO_ENV, DEFAULT_REPO))


def available() -> bool:
    """torch installed and the authors' checkout present (their utils.py and networks.py)."""
    return (importlib.util.find_spec("torch") is not None
            and all(os.path.isfile(os.path.join(repo_path(), f)) for f in ("utils.py", "networks.py")))


def _load_utils() -> tuple[types.ModuleType, dict[str, Any]]:
    """The authors' utils module, and what describes it (their commit, torch, torchvision)."""
    repo = repo_path()
    if not available():
        raise FileNotFoundError(f"the authors' code needs torch (pip install torch==2.13.0) and their checkout at "
                                f"{repo}: git clone https://github.com/VICO-UoE/DatasetCondensation there, or set "
                                f"{REPO_ENV}")
    import torch
    try:
        importlib.import_module("torchvision")
    except Exception:   # not installed, or built for another torch: utils.py needs it only for get_dataset
        stand_in = types.ModuleType("torchvision")
        stand_in.datasets, stand_in.transforms = types.ModuleType("datasets"), types.ModuleType("transforms")
        sys.modules["torchvision"] = stand_in
    torchvision = ("installed" if getattr(sys.modules["torchvision"], "__file__", None)
                   else "empty stand-in (used only by get_dataset, which is not called)")
    if repo not in sys.path:
        sys.path.insert(0, repo)
    utils = importlib.import_module("utils")
    try:
        commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return utils, {"authors_repo": repo, "authors_commit": commit, "torch": torch.__version__,
                   "threads": torch.get_num_threads(), "torchvision": torchvision}


def _args(ipc: int, batch_real: int, epochs: int = 300) -> types.SimpleNamespace:
    """main.py's argparse defaults (CPU, DC, distance 'ours', no augmentation) with this case's settings."""
    return types.SimpleNamespace(device="cpu", dis_metric="ours", ipc=ipc, batch_real=batch_real, batch_train=256,
                                 lr_img=0.1, lr_net=0.01, epoch_eval_train=epochs, dc_aug_param=None, dsa=False)


def _median_of(run: Callable[[], Any], repeats: int, warmup: bool) -> dict[str, Any]:
    if warmup:
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"times_s": times, "median_s": statistics.median(times)}


class _Condensation:
    """main.py's state for one experiment (main.py:65-102) on random real images of the given shapes."""

    def __init__(self, utils: types.ModuleType, classes: int, image: tuple[int, int, int], ipc: int,
                 batch_real: int, real_per_class: int):
        import torch
        import torch.nn as nn
        torch.manual_seed(0)
        np.random.seed(0)
        h, w, c = image
        self.utils, self.num_classes, self.channel, self.im_size = utils, classes, c, (h, w)
        self.args = _args(ipc, batch_real)
        self.args.outer_loop, self.args.inner_loop = utils.get_loops(ipc)
        self.images_all = torch.randn(classes * real_per_class, c, h, w)
        self.indices_class = [list(range(k * real_per_class, (k + 1) * real_per_class)) for k in range(classes)]
        self.image_syn = torch.randn(size=(classes * ipc, c, h, w), dtype=torch.float, requires_grad=True)
        self.label_syn = torch.tensor(np.repeat(np.arange(classes), ipc), dtype=torch.long)
        self.optimizer_img = torch.optim.SGD([self.image_syn, ], lr=self.args.lr_img, momentum=0.5)
        self.criterion = nn.CrossEntropyLoss()

    def get_images(self, c, n):   # main.py:80-82
        idx_shuffle = np.random.permutation(self.indices_class[c])[:n]
        return self.images_all[idx_shuffle]

    def network(self):
        return self.utils.get_network("ConvNet", self.channel, self.num_classes, self.im_size)

    def update_synthetic_data(self, net, net_parameters) -> float:
        """main.py:178-204 (DC: no DSA augmentation): one image step on the summed class losses."""
        import torch
        args, ipc, channel, im_size = self.args, self.args.ipc, self.channel, self.im_size
        loss = torch.tensor(0.0).to(args.device)
        for c in range(self.num_classes):
            img_real = self.get_images(c, args.batch_real)
            lab_real = torch.ones((img_real.shape[0],), device=args.device, dtype=torch.long) * c
            img_syn = self.image_syn[c * ipc:(c + 1) * ipc].reshape((ipc, channel, im_size[0], im_size[1]))
            lab_syn = torch.ones((ipc,), device=args.device, dtype=torch.long) * c

            output_real = net(img_real)
            loss_real = self.criterion(output_real, lab_real)
            gw_real = torch.autograd.grad(loss_real, net_parameters)
            gw_real = list((_.detach().clone() for _ in gw_real))

            output_syn = net(img_syn)
            loss_syn = self.criterion(output_syn, lab_syn)
            gw_syn = torch.autograd.grad(loss_syn, net_parameters, create_graph=True)

            loss += self.utils.match_loss(gw_syn, gw_real, args)

        self.optimizer_img.zero_grad()
        loss.backward()
        self.optimizer_img.step()
        return loss.item()

    def update_network(self, net, optimizer_net) -> None:
        """main.py:211-215: `inner_loop` epochs of their `epoch('train')` on a copy of the synthetic set."""
        import torch
        args = self.args
        image_syn_train, label_syn_train = copy.deepcopy(self.image_syn.detach()), copy.deepcopy(self.label_syn.detach())
        dst_syn_train = self.utils.TensorDataset(image_syn_train, label_syn_train)
        trainloader = torch.utils.data.DataLoader(dst_syn_train, batch_size=args.batch_train, shuffle=True, num_workers=0)
        for il in range(args.inner_loop):
            self.utils.epoch('train', trainloader, net, optimizer_net, self.criterion, args, aug=False)

    def outer_iteration(self) -> float:
        """main.py:147-221 for DC: a fresh network, `outer_loop` image steps with network updates between."""
        import torch
        args = self.args
        net = self.network()
        net.train()
        net_parameters = list(net.parameters())
        optimizer_net = torch.optim.SGD(net.parameters(), lr=args.lr_net)
        optimizer_net.zero_grad()
        loss_avg = 0
        for ol in range(args.outer_loop):
            # main.py:163-174 (the BatchNorm freeze) does nothing for the default ConvNet (instance norm).
            loss_avg += self.update_synthetic_data(net, net_parameters)
            if ol == args.outer_loop - 1:
                break
            self.update_network(net, optimizer_net)
        return loss_avg / (self.num_classes * args.outer_loop)


def time_matching_step(classes: int, image: tuple[int, int, int], ipc: int, batch_real: int, repeats: int,
                       warmup: bool = True) -> dict[str, Any]:
    """One image step (all classes' matching, one SGD step) on one fresh network, as main.py runs it."""
    utils, described = _load_utils()
    run = _Condensation(utils, classes, image, ipc, batch_real, max(batch_real, 300))
    net = run.network()
    net.train()
    parameters = list(net.parameters())
    return {**_median_of(lambda: run.update_synthetic_data(net, parameters), repeats, warmup), **described}


def time_inner_update(classes: int, image: tuple[int, int, int], ipc: int, repeats: int,
                      warmup: bool = True) -> dict[str, Any]:
    """One network update between image steps: `inner_loop` epochs on the ipc x classes synthetic images."""
    import torch
    utils, described = _load_utils()
    run = _Condensation(utils, classes, image, ipc, 1, 1)
    net = run.network()
    optimizer_net = torch.optim.SGD(net.parameters(), lr=run.args.lr_net)
    result = _median_of(lambda: run.update_network(net, optimizer_net), repeats, warmup)
    steps = run.args.inner_loop * -(-classes * ipc // run.args.batch_train)
    return {**result, "sgd_steps": steps, "per_step_s": result["median_s"] / steps, **described}


def time_outer_iteration(classes: int, image: tuple[int, int, int], ipc: int, batch_real: int, repeats: int,
                         warmup: bool = True) -> dict[str, Any]:
    """One outer iteration of main.py (`it` loop body, evaluation excluded)."""
    utils, described = _load_utils()
    run = _Condensation(utils, classes, image, ipc, batch_real, max(batch_real, 300))
    return {**_median_of(run.outer_iteration, repeats, warmup), **described}


def time_evaluation(classes: int, image: tuple[int, int, int], ipc: int, epochs: int, test_images: int,
                    repeats: int) -> dict[str, Any]:
    """One evaluation network, as main.py:124-127 runs it: `get_network` and their `evaluate_synset`
    (SGD momentum 0.9, weight decay 5e-4, Epoch+1 epochs with the lr drop, batch 256, no augmentation),
    then their test pass over `test_images` random images at batch 256."""
    import torch
    utils, described = _load_utils()
    torch.manual_seed(0)
    h, w, c = image
    images_train = torch.randn(classes * ipc, c, h, w)
    labels_train = torch.tensor(np.repeat(np.arange(classes), ipc), dtype=torch.long)
    test = utils.TensorDataset(torch.randn(test_images, c, h, w), torch.arange(test_images) % classes)
    testloader = torch.utils.data.DataLoader(test, batch_size=256, shuffle=False, num_workers=0)
    args = _args(ipc, 1, epochs)
    devnull = open(os.devnull, "w")

    def one_network():
        net_eval = utils.get_network("ConvNet", c, classes, (h, w))
        stdout, sys.stdout = sys.stdout, devnull   # evaluate_synset prints a line per network
        try:
            utils.evaluate_synset(0, net_eval, copy.deepcopy(images_train), copy.deepcopy(labels_train), testloader, args)
        finally:
            sys.stdout = stdout

    return {**_median_of(one_network, repeats, warmup=False), "epochs_run": epochs + 1, **described}
