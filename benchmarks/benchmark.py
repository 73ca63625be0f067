"""Speed and memory of dcjax's compiled programs, measured the same way every time.

Each case runs in a fresh Python process (`python -m benchmarks.benchmark '<case json>'`, run from
the repository root) so that its peak resident memory is its own and one case's compilation caches
cannot help another. A case compiles its program once (timed), reads XLA's FLOP count
(`cost_analysis`) and buffer sizes (`memory_analysis`), runs it once to warm up, then times
`repeats` runs and reports the median.
Data are random arrays of the right shapes: the timings do not depend on pixel values, and the
benchmark needs no dataset. `bin/bench.py` runs a suite of cases and writes the tables.
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import provenance
from dcjax import compilation

SCHEDULERS = ("memory", "default")
EVAL_TEST_IMAGES = 2000   # test-set size of the evaluation case (a real test set has 10 000: ~5x the test pass)


@dataclasses.dataclass(frozen=True)
class Case:
    """One measurement. `kind` picks the function; the other fields are its settings."""
    kind: str                      # peak | matching | inner | outer | eval
    label: str = ""
    classes: int = 10
    image: tuple[int, int, int] = (28, 28, 1)
    ipc: int = 1
    batch_real: int = 256
    mode: str = "unroll"           # matching: unroll | vmap | map ; eval: vmap | map | sequential
    class_chunk: int | None = None
    conv_impl: str = "matmul_grad"
    scheduler: str = "memory"      # memory: dcjax's CPU compiler options; default: XLA's defaults
    num_models: int = 20
    epochs: int = 10
    repeats: int = 3
    compile_only: bool = False
    devices: int = 1               # outer: simulated CPU devices (XLA_FLAGS) the classes are sharded over
    method: str = "dc"             # outer: dc | dsa | dm, each with its configs.common setting
    test_images: int = EVAL_TEST_IMAGES   # eval: size of the random test set each network is tested on
    warmup: bool = True            # one untimed run first (compilation is timed apart; off for minutes-long runs)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Case":
        fields = json.loads(text)
        fields["image"] = tuple(fields["image"])
        return cls(**fields)


def _options(scheduler: str) -> dict[str, str]:
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {scheduler!r}")
    return compilation.compiler_options() if scheduler == "memory" else {}


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6   # Linux reports KiB


def _block(tree: Any) -> Any:
    return jax.block_until_ready(tree)


def compile_and_analyse(fun: Callable, args: Sequence[Any], options: dict[str, str]) -> tuple[Any, dict[str, Any]]:
    """Compile `fun(*args)` (timed) and read XLA's FLOP count and buffer sizes for it."""
    start = time.perf_counter()
    compiled = jax.jit(fun, compiler_options=options).lower(*args).compile()
    result: dict[str, Any] = {"compile_s": time.perf_counter() - start}
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    result["gflop"] = float(cost.get("flops", 0.0)) / 1e9 if cost else None
    memory = compiled.memory_analysis()
    if memory is not None:
        result["xla_temp_gb"] = memory.temp_size_in_bytes / 1e9
        result["xla_args_gb"] = memory.argument_size_in_bytes / 1e9
        result["xla_out_gb"] = memory.output_size_in_bytes / 1e9
    return compiled, result


def time_compiled(fun: Callable, args: Sequence[Any], repeats: int, options: dict[str, str],
                  compile_only: bool = False, feed_back: Callable | None = None,
                  call: Callable | None = None, warmup: bool = True) -> dict[str, Any]:
    """Compile `fun(*args)`, analyse it, warm up once (unless not `warmup`), and time `repeats` runs (median).

    `feed_back(args, out)` gives the next call's arguments (e.g. the next state of a loop);
    `call(compiled, args)` replaces the timed `compiled(*args)` (e.g. several calls in a row).
    """
    compiled, result = compile_and_analyse(fun, args, options)
    if compile_only:
        return result
    call = call or (lambda compiled, args: compiled(*args))
    out = _block(call(compiled, args)) if warmup else None
    times = []
    for _ in range(repeats):
        if feed_back is not None and out is not None:
            args = feed_back(args, out)
        start = time.perf_counter()
        out = _block(call(compiled, args))
        times.append(time.perf_counter() - start)
    result["times_s"] = times
    result["median_s"] = statistics.median(times)
    if result["gflop"]:
        result["gflops_per_s"] = result["gflop"] / result["median_s"]
    return result


def _convnet(case: Case):
    from dcjax.nets import get_model
    return get_model("ConvNet", case.classes, case.image, conv_impl=case.conv_impl)


def measure_peak(case: Case) -> dict[str, Any]:
    """float32 matmul GFLOP/s of this machine: NumPy (its BLAS) and jax.numpy, 2048x2048."""
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    numpy_times = []
    for _ in range(max(case.repeats, 5)):
        start = time.perf_counter()
        a @ a
        numpy_times.append(time.perf_counter() - start)
    ja = jnp.asarray(a)
    jax_result = time_compiled(lambda x: x @ x, [ja], max(case.repeats, 5), {})
    flop = 2 * n ** 3 / 1e9
    return {"numpy_gflops_per_s": flop / statistics.median(numpy_times),
            "jax_gflops_per_s": flop / jax_result["median_s"]}


def measure_matching(case: Case) -> dict[str, Any]:
    """One matching step (all classes' losses and image gradients), as `condense` runs it."""
    from dcjax.matching import matching_loss_and_grad
    module = _convnet(case)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    syn = jax.random.normal(keys[0], (case.classes, case.ipc) + case.image)
    real = jax.random.normal(keys[1], (case.classes, case.batch_real) + case.image)
    params = module.init(keys[2], syn[0], train=False)["params"]

    def step(params, syn, real):
        return matching_loss_and_grad(module.apply, params, {}, syn, real, "ours", case.mode, case.class_chunk)

    result = time_compiled(step, [params, syn, real], case.repeats, _options(case.scheduler), case.compile_only)
    return with_chunk_loop_counted(case, result)


def with_chunk_loop_counted(case: Case, result: dict[str, Any]) -> dict[str, Any]:
    """A chunked or mapped step is a loop over class groups; XLA counts its body once, so scale the count."""
    from dcjax.matching import resolve_class_parallel
    if case.kind != "matching" or not result.get("gflop"):
        return result
    # The groups matching runs: one class per iteration mapped, class_chunk vmapped, none unrolled.
    chunk = {"map": 1, "vmap": case.class_chunk}.get(resolve_class_parallel(case.mode, case.classes))
    if chunk and chunk < case.classes:
        chunks, rest = divmod(case.classes, chunk)
        # lax.map(batch_size=k) loops over the full chunks and runs the remainder once, outside the loop.
        per_class = result["gflop"] / (chunk + rest)
        result["gflop"] = per_class * case.classes
        if result.get("median_s"):
            result["gflops_per_s"] = result["gflop"] / result["median_s"]
    return result


def measure_inner(case: Case) -> dict[str, Any]:
    """The inner network update of one outer step: zeta_theta epochs of SGD on the synthetic set."""
    from dcjax.configuration import loops_for_ipc
    from dcjax.training import train_epochs
    module = _convnet(case)
    _, inner_loop = loops_for_ipc(case.ipc)
    n = case.classes * case.ipc
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (n,) + case.image)
    y = jnp.repeat(jnp.arange(case.classes), case.ipc)
    variables = module.init(keys[1], x[:1], train=False)
    tx = optax.sgd(0.01)

    def update(variables, x, key):
        return train_epochs(module.apply, tx, variables, tx.init(variables["params"]), x, y, key, inner_loop, 256)[0]

    result = time_compiled(update, [variables, x, keys[2]], case.repeats, _options(case.scheduler), case.compile_only)
    steps = inner_loop * -(-n // 256)
    result["sgd_steps"] = steps
    # XLA's cost analysis counts a loop body once: here, one epoch of the epoch loop.
    result["gflop"] = result["gflop"] * inner_loop if result.get("gflop") else None
    if "median_s" in result:
        result["per_step_s"] = result["median_s"] / steps
        if result["gflop"]:
            result["gflops_per_s"] = result["gflop"] / result["median_s"]
    return result


def _without_flop_rate(result: dict[str, Any]) -> dict[str, Any]:
    """Programs with nested loops: XLA's count (each loop body once) is not the work done; drop it."""
    result["xla_gflop_loop_bodies_once"] = result.pop("gflop", None)
    result.pop("gflops_per_s", None)
    return result


def _random_dataset(case: Case, train_per_class: int = 500, test_size: int = 1000):
    from dcjax import data
    rng = np.random.default_rng(0)
    y_train = np.repeat(np.arange(case.classes), train_per_class)
    y_test = np.arange(test_size) % case.classes
    x_train = rng.integers(0, 256, (len(y_train),) + case.image, dtype=np.uint8)
    x_test = rng.integers(0, 256, (test_size,) + case.image, dtype=np.uint8)
    return data.from_arrays("benchmark", x_train, y_train, x_test, y_test)


def measure_outer(case: Case) -> dict[str, Any]:
    """One full outer iteration (paper loops for the ipc; DM: one matching step), as `dcjax.condense`
    compiles it for the case's method."""
    from configs import common
    from dcjax import condensation, configuration, sharding
    settings = {"dc": common.paper_setting, "dsa": common.dsa_setting, "dm": common.dm_setting}
    if case.method not in settings:
        raise ValueError(f"method must be one of {tuple(settings)}, got {case.method!r}")
    config = settings[case.method]("benchmark", case.ipc)
    config.batch_real = case.batch_real
    config.class_parallel = case.mode
    config.class_chunk = case.class_chunk
    config.net.conv_impl = case.conv_impl
    dataset = _random_dataset(case, train_per_class=max(case.batch_real, 300))
    module = configuration.model_from_config(config, dataset.num_classes, dataset.image_shape)
    layout = sharding.class_layout(config, dataset.num_classes)
    if layout.mesh.devices.size != case.devices:
        raise RuntimeError(f"expected {case.devices} devices, JAX has {jax.device_count()}")
    state = condensation.place_state(condensation.init_state(config, dataset), layout)
    dataset = layout.put_replicated(dataset)
    step = condensation.outer_iteration_function(module, config, layout)
    return _without_flop_rate(time_compiled(step, [state, dataset], case.repeats, _options(case.scheduler),
                                            case.compile_only, feed_back=lambda args, out: [out[0], args[1]],
                                            warmup=case.warmup))


def measure_eval(case: Case) -> dict[str, Any]:
    """`num_models` networks trained on an ipc x classes set for `epochs`, then tested on `test_images` images.

    'vmap' and 'map' are one compiled program for all networks; 'sequential' calls the
    one-network program `num_models` times from Python, as a user looping over seeds would.
    """
    from dcjax.evaluate import EvalRecipe, evaluation_program
    module = _convnet(case)
    dataset = _random_dataset(case, train_per_class=case.ipc, test_size=case.test_images)
    keys = jax.random.split(jax.random.PRNGKey(0), case.num_models)
    networks = (keys, jnp.arange(case.num_models))
    recipe = EvalRecipe(epochs=case.epochs)
    data_args = [dataset.x_train, dataset.y_train, ((dataset.x_test, dataset.y_test),)]
    options = _options(case.scheduler)
    if case.mode in ("vmap", "map"):
        run = evaluation_program(module, recipe, case.mode)
        result = time_compiled(run, [networks] + data_args, case.repeats, options, case.compile_only,
                               warmup=case.warmup)
    elif case.mode == "sequential":
        def one_after_another(compiled, args):
            return [_block(compiled((keys[i:i + 1], networks[1][i:i + 1]), *args[1:])) for i in range(case.num_models)]

        result = time_compiled(evaluation_program(module, recipe, "map"), [(keys[:1], networks[1][:1])] + data_args,
                               case.repeats, options, case.compile_only, call=one_after_another, warmup=case.warmup)
    else:
        raise ValueError(f"eval mode must be vmap, map or sequential, got {case.mode!r}")
    result["epochs_run"] = sum(recipe.phase_epochs())
    result = _without_flop_rate(result)
    result["gflop_per_network"] = _evaluation_network_gflop(module, recipe, case, options)
    return result


def _evaluation_network_gflop(module, recipe, case: Case, options: dict[str, str]) -> float | None:
    """XLA's FLOP count of the work one evaluation network does: its training epochs (one epoch's
    program counted, times the epochs) and its test pass, each compiled on its own, since the
    evaluation program's loops are counted once each. The report's floor divides it by the matmul peak."""
    from dcjax.training import train_epochs
    x = jnp.zeros((case.classes * case.ipc,) + case.image, jnp.float32)
    y = jnp.repeat(jnp.arange(case.classes), case.ipc)
    variables = module.init(jax.random.PRNGKey(0), x[:1], train=False)
    tx = recipe.optimizer(recipe.lr)

    def one_epoch(variables, key):
        return train_epochs(module.apply, tx, variables, tx.init(variables["params"]), x, y, key, 1,
                            recipe.batch_size)[0]

    def test_pass(variables, images):
        return module.apply(variables, images, train=False)

    test_images = jax.ShapeDtypeStruct((case.test_images,) + case.image, jnp.float32)
    _, epoch = compile_and_analyse(one_epoch, [variables, jax.random.PRNGKey(1)], options)
    _, test = compile_and_analyse(test_pass, [variables, test_images], options)
    if not epoch["gflop"] or not test["gflop"]:
        return None
    return sum(recipe.phase_epochs()) * epoch["gflop"] + test["gflop"]


MEASURES = {"peak": measure_peak, "matching": measure_matching, "inner": measure_inner,
            "outer": measure_outer, "eval": measure_eval}


def measure(case: Case) -> dict[str, Any]:
    """Run one case in this process; the result includes this process's peak memory."""
    result = MEASURES[case.kind](case)
    result["peak_rss_gb"] = _peak_rss_gb()
    return result


def run_in_subprocess(case: Case, timeout_s: float | None = None) -> dict[str, Any]:
    """`measure(case)` in a fresh interpreter; errors come back as {'error': ...} (the suite goes on)."""
    root = provenance.REPO_ROOT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    if case.devices > 1:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={case.devices}".strip()
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.benchmark", case.to_json()], capture_output=True,
                              text=True, timeout=timeout_s, env=env, cwd=root)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s} s"}
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode < 0:
        return {"error": f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")}
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]}
    return json.loads(lines[-1][len("RESULT "):])


def machine_description() -> dict[str, Any]:
    """CPU model, core count, memory and library versions of this machine."""
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    import flax
    described = {"cpu": provenance.cpu_model(), "cores": os.cpu_count(), "memory_gib": round(memory_gb, 1),
                 "python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
                 "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()]}
    return described


if __name__ == "__main__":
    print("RESULT " + json.dumps(measure(Case.from_json(sys.argv[1]))), flush=True)
