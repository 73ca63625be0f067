"""The authors' matching step in PyTorch, for a same-machine speed comparison (optional: needs torch).

Written the way the reference's main.py does it: a Python loop over classes, the real gradient
detached, the synthetic gradient with `create_graph=True`, `match_loss` ('ours', utils.py
distance_wb) summed over classes, then one backward pass and one SGD-momentum step on the images.
The network is the reference's default ConvNet (width 128, depth 3, instance norm as
GroupNorm(C, C), ReLU, 2x2 average pooling; first conv padding 3 for one-channel inputs).
Run through `bin/bench.py`, which calls `time_matching_step` in a fresh process.
"""
from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ReferenceConvNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_hw: int, width: int = 128, depth: int = 3):
        super().__init__()
        layers, size = [], 32 if image_hw == 28 else image_hw
        for d in range(depth):
            layers += [nn.Conv2d(channels if d == 0 else width, width, 3, padding=3 if channels == 1 and d == 0 else 1),
                       nn.GroupNorm(width, width, affine=True), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
            size //= 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).reshape(x.shape[0], -1))


def distance_wb(gwr: torch.Tensor, gws: torch.Tensor) -> torch.Tensor:
    """utils.py distance_wb: per-output-unit cosine distance; 1-D tensors are ignored."""
    shape = gwr.shape
    if len(shape) == 4:
        gwr, gws = gwr.reshape(shape[0], -1), gws.reshape(shape[0], -1)
    elif len(shape) == 3:
        gwr, gws = gwr.reshape(shape[0], -1), gws.reshape(shape[0], -1)
    elif len(shape) == 1:
        return torch.tensor(0.0)
    return torch.sum(1 - torch.sum(gwr * gws, dim=-1) /
                     (torch.norm(gwr, dim=-1) * torch.norm(gws, dim=-1) + 0.000001))


def match_loss(gw_syn, gw_real) -> torch.Tensor:
    return sum(distance_wb(gw_real[i], gw_syn[i]) for i in range(len(gw_real)))


def time_matching_step(classes: int, image: tuple[int, int, int], ipc: int, batch_real: int,
                       repeats: int) -> dict:
    """Median wall time of the reference's matching step (after one warm-up step)."""
    torch.manual_seed(0)
    h, w, c = image
    net = ReferenceConvNet(c, classes, h)
    params = list(net.parameters())
    images_real = torch.randn(classes, batch_real, c, h, w)
    image_syn = torch.randn(classes * ipc, c, h, w, requires_grad=True)
    optimizer_img = torch.optim.SGD([image_syn], lr=0.1, momentum=0.5)

    def step():
        loss = torch.tensor(0.0)
        for k in range(classes):
            img_real = images_real[k]
            lab_real = torch.ones((batch_real,), dtype=torch.long) * k
            img_syn = image_syn[k * ipc:(k + 1) * ipc].reshape((ipc, c, h, w))
            lab_syn = torch.ones((ipc,), dtype=torch.long) * k
            gw_real = torch.autograd.grad(F.cross_entropy(net(img_real), lab_real), params)
            gw_real = [g.detach().clone() for g in gw_real]
            gw_syn = torch.autograd.grad(F.cross_entropy(net(img_syn), lab_syn), params, create_graph=True)
            loss = loss + match_loss(gw_syn, gw_real)
        optimizer_img.zero_grad()
        loss.backward()
        optimizer_img.step()
        return float(loss)

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"times_s": times, "median_s": statistics.median(times), "threads": torch.get_num_threads(),
            "torch": torch.__version__}
