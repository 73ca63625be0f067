"""Exploratory: ConvNet SGD steps on distinct batches inside lax.scan vs fully unrolled.

    python -m benchmarks.explore.scan_distinct_batches <unroll: 1 or 20> matmul_grad
"""
import time, jax, jax.numpy as jnp, sys, optax
from dcjax.nets import get_model
from dcjax.training import sgd_step
u = int(sys.argv[1]); impl = sys.argv[2]
xs = jax.random.normal(jax.random.PRNGKey(0), (20, 100, 28, 28, 1)); y = jnp.repeat(jnp.arange(10), 10)
m = get_model("ConvNet", 10, (28,28,1), conv_impl=impl); v = m.init(jax.random.PRNGKey(1), xs[0, :1]); tx = optax.sgd(0.01)
def scanned(v, xs):
    def body(v, x): return sgd_step(m.apply, tx, v, tx.init(v["params"]), x, y)[0], None
    return jax.lax.scan(body, v, xs, unroll=u)[0]
f = jax.jit(scanned); jax.block_until_ready(f(v, xs))
t=time.time(); jax.block_until_ready(f(v, xs)); w=time.time()-t
print(f"distinct x, {impl} unroll={u}: {w/20*1000:.0f} ms/step")
