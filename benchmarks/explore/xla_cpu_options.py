"""Exploratory: an SGD step of ConvNet-128 on 100 28x28 images, alone, unrolled 10x and in a
10-step lax.scan, under XLA:CPU compiler-option variants (ms per step).

    python benchmarks/explore/xla_cpu_options.py [variant ...]
"""
import sys, time, jax, jax.numpy as jnp, optax
from dcjax.nets import get_model
from dcjax.training import sgd_step
x = jax.random.normal(jax.random.PRNGKey(0), (100, 28, 28, 1)); y = jnp.repeat(jnp.arange(10), 10)
m = get_model("ConvNet", 10, input_shape=(28, 28, 1)) if 'input_shape' in get_model.__code__.co_varnames else get_model("ConvNet", 10)
v = m.init(jax.random.PRNGKey(1), x[:1]); tx = optax.sgd(0.01)
def step(v, x): return sgd_step(m.apply, tx, v, tx.init(v["params"]), x, y)[0]
def scanned(v, x):
    return jax.lax.scan(lambda v, _: (step(v, x), None), v, None, length=10)[0]
def unrolled(v, x):
    for _ in range(10): v = step(v, x)
    return v
def bench(name, f, opts, n):
    f = jax.jit(f, compiler_options=opts)
    try:
        t = time.time(); jax.block_until_ready(f(v, x)); c = time.time() - t
    except Exception as e:
        print(f"{name:55s} FAILED {str(e)[:100]}", flush=True); return
    best = 1e9
    for _ in range(3):
        t = time.time(); jax.block_until_ready(f(v, x)); best = min(best, time.time() - t)
    print(f"{name:55s} {best / n * 1000:7.1f} ms/step (compile {c:.1f}s)", flush=True)
base = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}
variants = {"memsched": base, "default": {},
            "thunk_off": {**base, "xla_cpu_use_thunk_runtime": False},
            "xnn_greedy": {**base, "xla_cpu_experimental_xnn_graph_fusion_mode": "XNN_GRAPH_FUSION_MODE_GREEDY"},
            "no_xnnpack": {**base, "xla_cpu_use_xnnpack": False},
            "onednn": {**base, "xla_cpu_use_onednn": True},
            "small_while_0": {**base, "xla_cpu_small_while_loop_byte_threshold": 0},
            "small_while_big": {**base, "xla_cpu_small_while_loop_byte_threshold": 1 << 40},
            "eigen_single": {**base, "xla_cpu_multi_thread_eigen": False},
            "region_copy": {**base, "xla_cpu_copy_insertion_use_region_analysis": True},
            }
sel = sys.argv[1:] or list(variants)
for k in sel:
    o = variants[k]
    if k == "memsched":
        bench(f"{k}: one step", step, o, 1)
        bench(f"{k}: unrolled 10", unrolled, o, 10)
    bench(f"{k}: scan 10", scanned, o, 10)
