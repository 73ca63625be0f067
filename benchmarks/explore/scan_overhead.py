"""Exploratory: an SGD step on 100 28x28 images, alone vs inside lax.scan (XLA CPU loop-body slowdown)."""
import time, jax, jax.numpy as jnp, optax
from dcjax.nets import get_model
from dcjax.training import sgd_step
def bench(name, f, *a, n=1):
    f = jax.jit(f); t=time.time(); jax.block_until_ready(f(*a)); c=time.time()-t; t=time.time()
    for _ in range(2): r = f(*a)
    jax.block_until_ready(r); dt=(time.time()-t)/2/n
    print(f"{name:40s} {dt*1000:8.1f} ms/step  (compile+1 {c:.1f}s)", flush=True)
x = jax.random.normal(jax.random.PRNGKey(0), (100, 28, 28, 1)); y = jnp.repeat(jnp.arange(10), 10)
m = get_model("ConvNet", 10); v = m.init(jax.random.PRNGKey(1), x[:1]); tx = optax.sgd(0.01)
def scanned(v, x, unroll):
    def body(v, _): return sgd_step(m.apply, tx, v, tx.init(v["params"]), x, y)[0], None
    return jax.lax.scan(body, v, None, length=10, unroll=unroll)[0]
bench("one step", lambda v, x: sgd_step(m.apply, tx, v, tx.init(v["params"]), x, y)[0], v, x)
for u in [1, 2, 5, 10]:
    bench(f"scan 10 unroll={u}", lambda v, x: scanned(v, x, u), v, x, n=10)
