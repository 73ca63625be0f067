"""Exploratory: one ipc-10 outer iteration split by its parts, on random 28x28x1 data, batch_real 64.

    python benchmarks/explore/outer_parts.py <repository root> 10,1 2,50

Each argument T,I times an outer iteration of T matching steps with I inner epochs between them
(10,1: mostly matching; 2,50: mostly the inner network update), once with compilation, once without.
Give another checkout's root to time its code (A/B of two commits, one after the other).
"""
import sys
import time

sys.path.insert(0, sys.argv[1])

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import common  # noqa: E402
from dcjax import condensation, configuration, data, sharding  # noqa: E402

rng = np.random.default_rng(0)
y = np.repeat(np.arange(10), 300)
x = rng.integers(0, 256, (3000, 28, 28, 1), dtype=np.uint8)
dataset = data.from_arrays("benchmark", x, y, x[:100], y[:100])
for T, inner in [tuple(map(int, a.split(","))) for a in sys.argv[2:]]:
    c = common.paper_setting("benchmark", 10)
    c.batch_real, c.outer_loop, c.inner_loop = 64, T, inner
    module = configuration.model_from_config(c, 10, dataset.image_shape)
    layout = sharding.class_layout(c, 10)
    state = condensation.place_state(condensation.init_state(c, dataset), layout)
    d = layout.put_replicated(dataset)
    step = condensation.make_outer_iteration(module, c, layout)
    t = time.time()
    state, loss = step(state, d)
    jax.block_until_ready(loss)
    first = time.time() - t
    t = time.time()
    state, loss = step(state, d)
    jax.block_until_ready(loss)
    print(f"{sys.argv[1]} T={T} inner={inner}: first (with compile) {first:.1f} s, second {time.time() - t:.1f} s",
          flush=True)
