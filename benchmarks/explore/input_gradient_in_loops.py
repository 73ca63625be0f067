"""Exploratory: a convolution's weight gradient (matmul form), XLA's input gradient and the
flipped-kernel input gradient, once, unrolled 10x and in a 10-step lax.scan (ms per iteration).

    python benchmarks/explore/input_gradient_in_loops.py
"""
import time, jax, jax.numpy as jnp
from dcjax.nets.convolution import _kernel_gradient, _xla_conv
k = jax.random.PRNGKey(0)
def bench(f, c, n):
    f = jax.jit(f); jax.block_until_ready(f(c)); best = 1e9
    for _ in range(3):
        t = time.time(); jax.block_until_ready(f(c)); best = min(best, time.time() - t)
    return best / n * 1000
def kg(c):
    g = _kernel_gradient(c[0], c[2], 1, (3, 3))
    return c[0], c[1] + 1e-3 * g, c[2] * (1 + 1e-6 * g.sum())
def ig(c):
    dx = jax.vjp(lambda x_: _xla_conv(x_, c[1], 1, 1), c[0])[1](c[2])[0]
    return jnp.tanh(dx), c[1], c[2] * (1 + 1e-6 * dx.sum())
def ig2(c):
    w = c[1]
    wt = jnp.flip(w, (0, 1)).swapaxes(2, 3)
    dx = jax.lax.conv_general_dilated(c[2], wt, (1, 1), [(1, 1), (1, 1)], dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.tanh(dx), c[1], c[2] * (1 + 1e-6 * dx.sum())
def fw(c):
    y = _xla_conv(c[0], c[1], 1, 1)
    return c[0], c[1], y * 1e-3 + c[2]
for hw, cin in [(32, 1), (16, 128), (8, 128)]:
    x = jax.random.normal(k, (100, hw, hw, cin)); dy = jax.random.normal(k, (100, hw, hw, 128)); w = jax.random.normal(k, (3, 3, cin, 128)) * 0.01
    d1 = jax.vjp(lambda x_: _xla_conv(x_, w, 1, 1), x)[1](dy)[0]; d2 = ig2((x, w, dy))[0]; print('maxdiff', float(jnp.abs(jnp.tanh(d1) - d2).max()))
for hw, cin in [(32, 1), (16, 128), (8, 128)]:
    x = jax.random.normal(k, (100, hw, hw, cin)); dy = jax.random.normal(k, (100, hw, hw, 128)); w = jax.random.normal(k, (3, 3, cin, 128)) * 0.01
    pad = 1
    bodies = {
      "kernel_grad": (kg, (x, w, dy)),
      "input_grad": (ig, (x, w, dy)),
      "input_grad_fwdconv": (ig2, (x, w, dy)),
    }
    for bn, (body, c) in bodies.items():
        def unrolled(c, body=body):
            for _ in range(10): c = body(c)
            return c
        def scanned(c, body=body): return jax.lax.scan(lambda c, _: (body(c), None), c, None, length=10)[0]
        u = bench(unrolled, c, 10); s = bench(scanned, c, 10); o = bench(body, c, 1)
        print(f"{hw}x{hw}x{cin} {bn:12s} once {o:7.1f} unrolled {u:7.1f}  scan {s:7.1f} ms  ratio {s/u:.2f}", flush=True)
