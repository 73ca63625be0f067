"""Exploratory: one matching step (ConvNet-128, 10 classes, ipc 1, 28x28x1) in several formulations.

    python -m benchmarks.explore.matching_formulations <batch_real> <mode>

mode: unroll_lax | vmap_lax | unroll_fast | vmap_fast | vmap_shift | map_fast | map2_fast
(_fast = XLA conv forward + matmul weight gradient via custom_vjp, as dcjax.nets.layers).
A self-contained network, so formulations can be compared without touching dcjax.
"""
import time, sys, functools
import jax, jax.numpy as jnp
from jax import lax
import numpy as np

B = int(sys.argv[1]) if len(sys.argv) > 1 else 64
C = 10; IPC = 1; W = 128
mode = sys.argv[2] if len(sys.argv) > 2 else "vmap_lax"

DN = ("NHWC", "HWIO", "NHWC")
def conv_lax(x, w, pad):
    return lax.conv_general_dilated(x, w, (1, 1), [(pad, pad), (pad, pad)], dimension_numbers=DN)

def _wgrad_shift(x, dy, pad, kh, kw):
    xp = jnp.pad(x, ((0,0),(pad,pad),(pad,pad),(0,0)))
    H, Wd = dy.shape[1], dy.shape[2]
    rows = []
    for i in range(kh):
        cols = []
        for j in range(kw):
            xs = xp[:, i:i+H, j:j+Wd, :]
            cols.append(jnp.einsum("bhwi,bhwo->io", xs, dy))
        rows.append(jnp.stack(cols))
    return jnp.stack(rows)

@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_fast(x, w, pad):
    return conv_lax(x, w, pad)
def _fwd(x, w, pad):
    return conv_lax(x, w, pad), (x, w)
def _bwd(pad, res, dy):
    x, w = res
    _, vjp_x = jax.vjp(lambda x_: conv_lax(x_, w, pad), x)
    dx, = vjp_x(dy)
    dw = _wgrad_shift(x, dy, pad, w.shape[0], w.shape[1])
    return dx, dw
conv_fast.defvjp(_fwd, _bwd)

def conv_shift(x, w, pad):
    xp = jnp.pad(x, ((0,0),(pad,pad),(pad,pad),(0,0)))
    kh, kw = w.shape[:2]
    H = x.shape[1] + 2*pad - kh + 1; Wd = x.shape[2] + 2*pad - kw + 1
    out = 0
    for i in range(kh):
        for j in range(kw):
            out = out + jnp.einsum("bhwi,io->bhwo", xp[:, i:i+H, j:j+Wd, :], w[i, j])
    return out

conv = {"vmap_lax": conv_lax, "unroll_lax": conv_lax, "vmap_fast": conv_fast, "unroll_fast": conv_fast, "vmap_shift": conv_shift, "map_fast": conv_fast, "map2_fast": conv_fast}[mode]

def instnorm(x, s, b):
    m = x.mean((1, 2), keepdims=True); v = ((x - m) ** 2).mean((1, 2), keepdims=True)
    return (x - m) / jnp.sqrt(v + 1e-5) * s + b

def net(p, x):
    h = x
    for l in range(3):
        h = conv(h, p[f"w{l}"], 3 if l == 0 else 1) + p[f"b{l}"]
        h = instnorm(h, p[f"s{l}"], p[f"o{l}"])
        h = jax.nn.relu(h)
        h = lax.reduce_window(h, 0., lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4
    h = h.reshape(h.shape[0], -1)
    return h @ p["fw"] + p["fb"]

def ce(p, x, y):
    logits = net(p, x)
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(x.shape[0]), y])

def dist(gs, gr):
    tot = 0.
    for k in gs:
        if gs[k].ndim < 2: continue
        a = gs[k].reshape(-1, gs[k].shape[-1]); b = gr[k].reshape(-1, gr[k].shape[-1])
        tot += jnp.sum(1 - jnp.sum(a*b, 0) / (jnp.linalg.norm(a, axis=0) * jnp.linalg.norm(b, axis=0) + 1e-6))
    return tot

def class_loss(syn_c, real_c, c, p):
    yr = jnp.full((real_c.shape[0],), c); ys = jnp.full((syn_c.shape[0],), c)
    gr = jax.lax.stop_gradient(jax.grad(ce)(p, real_c, yr))
    gs = jax.grad(ce)(p, syn_c, ys)
    return dist(gs, gr)

key = jax.random.PRNGKey(0)
ks = jax.random.split(key, 20)
p = {}
cin = 1
for l in range(3):
    p[f"w{l}"] = jax.random.uniform(ks[l], (3, 3, cin, W), minval=-1, maxval=1) / np.sqrt(9*cin)
    p[f"b{l}"] = jnp.zeros(W); p[f"s{l}"] = jnp.ones(W); p[f"o{l}"] = jnp.zeros(W); cin = W
p["fw"] = jax.random.uniform(ks[5], (2048, C), minval=-1, maxval=1) / np.sqrt(2048); p["fb"] = jnp.zeros(C)
syn = jax.random.normal(ks[6], (C, IPC, 28, 28, 1))
real = jax.random.normal(ks[7], (C, B, 28, 28, 1))

if mode.startswith("map"):
    bs = 1 if mode == "map_fast" else 2
    @jax.jit
    def step(syn, real, p):
        f = lambda a: jax.value_and_grad(class_loss)(a[0], a[1], a[2], p)
        l, g = jax.lax.map(f, (syn, real, jnp.arange(C)), batch_size=bs)
        return l.sum(), g
elif mode.startswith("vmap"):
    @jax.jit
    def step(syn, real, p):
        f = jax.vmap(jax.value_and_grad(class_loss), in_axes=(0, 0, 0, None))
        l, g = f(syn, real, jnp.arange(C), p)
        return l.sum(), g
else:
    @jax.jit
    def step(syn, real, p):
        def tot(syn):
            return sum(class_loss(syn[c], real[c], c, p) for c in range(C))
        return jax.value_and_grad(tot)(syn)

t = time.time(); l, g = step(syn, real, p); jax.block_until_ready(g); print(mode, "compile+1", time.time()-t)
ts = []
for _ in range(3):
    t = time.time(); l, g = step(syn, real, p); jax.block_until_ready(g); ts.append(time.time()-t)
print(mode, B, "loss", float(l), "gnorm", float(jnp.linalg.norm(g)), "times", ["%.2f"%x for x in ts])
