"""Exploratory: weight gradient of a 3x3 conv (N images) as 2-D matmuls, K-split, stacked, im2col, XLA.

    python -m benchmarks.explore.weight_gradient_formulations 640
"""
import time, jax, jax.numpy as jnp, sys
from jax import lax
from functools import partial
def bench(name, f, *a, flops=None):
    f = jax.jit(f, compiler_options={"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}); jax.block_until_ready(f(*a)); ts=[]
    for _ in range(5):
        t=time.time(); jax.block_until_ready(f(*a)); ts.append(time.time()-t)
    dt=sorted(ts)[2]
    print(f"{name:30s} {dt*1000:8.1f} ms {flops/dt/1e9:6.1f} GF/s", flush=True)
DN = (((0,), (0,)), ((), ()))
def shifts(x, p, H, W):
    xp = jnp.pad(x, ((0,0),(p,p),(p,p),(0,0)))
    return [xp[:, i:i+H, j:j+W, :] for i in range(3) for j in range(3)]
def dg(x, dy, p):
    H, W, co = dy.shape[1], dy.shape[2], dy.shape[-1]; d2 = dy.reshape(-1, co)
    return jnp.stack([lax.dot_general(s.reshape(-1, x.shape[-1]), d2, DN) for s in shifts(x, p, H, W)])
def dgT(x, dy, p):
    H, W, co = dy.shape[1], dy.shape[2], dy.shape[-1]; d2 = dy.reshape(-1, co)
    return jnp.stack([lax.dot_general(d2, s.reshape(-1, x.shape[-1]), DN).T for s in shifts(x, p, H, W)])
def ksplit(x, dy, p, S):
    H, W, co = dy.shape[1], dy.shape[2], dy.shape[-1]; d2 = dy.reshape(S, -1, co)
    dn = (((1,), (1,)), ((0,), (0,)))
    return jnp.stack([lax.dot_general(s.reshape(S, -1, x.shape[-1]), d2, dn).sum(0) for s in shifts(x, p, H, W)])
def stack9(x, dy, p):
    H, W, co = dy.shape[1], dy.shape[2], dy.shape[-1]; d2 = dy.reshape(-1, co)
    st = jnp.stack([s.reshape(-1, x.shape[-1]) for s in shifts(x, p, H, W)])  # (9, N, ci)
    return lax.dot_general(st, d2, (((1,), (0,)), ((), ())))
def im2col(x, dy, p):
    H, W, co = dy.shape[1], dy.shape[2], dy.shape[-1]; d2 = dy.reshape(-1, co)
    pt = jnp.concatenate(shifts(x, p, H, W), -1).reshape(-1, 9 * x.shape[-1])
    return lax.dot_general(pt, d2, DN).reshape(9, x.shape[-1], co)
def xla(x, dy, p):
    w = jnp.zeros((3,3,x.shape[-1],dy.shape[-1]))
    f = lambda w: lax.conv_general_dilated(x, w, (1,1), [(p,p),(p,p)], dimension_numbers=("NHWC","HWIO","NHWC"))
    return jax.vjp(f, w)[1](dy)[0]
N = int(sys.argv[1])
for (H, ci, co) in [(16, 128, 128), (8, 128, 128)]:
    x = jax.random.normal(jax.random.PRNGKey(0), (N, H, H, ci)); dy = jax.random.normal(jax.random.PRNGKey(1), (N, H, H, co))
    fl = 2 * N * H * H * ci * co * 9
    print("layer", H, ci, co, "N", N)
    bench("dg", partial(dg, p=1), x, dy, flops=fl)
    bench("dgT", partial(dgT, p=1), x, dy, flops=fl)
    for S in (2, 8):
        bench(f"ksplit{S}", partial(ksplit, p=1, S=S), x, dy, flops=fl)
    bench("stack9", partial(stack9, p=1), x, dy, flops=fl)
    bench("im2col", partial(im2col, p=1), x, dy, flops=fl)
    bench("xla", partial(xla, p=1), x, dy, flops=fl)
    bench("fwd conv (ref)", lambda x, w: lax.conv_general_dilated(x, w, (1,1), [(1,1),(1,1)], dimension_numbers=("NHWC","HWIO","NHWC")), x, jnp.ones((3,3,ci,co)), flops=fl)
