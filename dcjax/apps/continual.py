"""Continual learning with a condensed rehearsal memory (paper section 3.2, Figure 4).

Task-incremental learning in the style of E2E (Castro et al., 2018): tasks that share one label
space (the paper: SVHN -> MNIST -> USPS, every image resized to 32x32 RGB) arrive one after
another; a rehearsal memory keeps `config.ipc` images per class of every finished task. At stage t
one network (carried over from stage t-1, fresh at stage 1):

1. trains `config.train.steps` SGD steps (lr `config.train.lr`) on batches drawn from task t's
   training images together with the memory of tasks 1..t-1, with knowledge distillation from the
   stage t-1 network (weight `config.distillation_weight`, temperature `config.temperature`) when
   the method distils;
2. adds task t's memory: herding on this network's penultimate features (E2E's rule), ipc images
   condensed by dcjax on task t's training images, or random real images;
3. fine-tunes `config.finetune.steps` steps (lr `config.finetune.lr`) on the memory of tasks
   1..t, the class- and task-balanced set (ipc images of every class of every task), with the same
   distillation (E2E's balanced fine-tuning; from stage 2 on, as stage 1 has nothing to balance);
4. is tested on `config.test_per_task` random test images of every task so far (the paper: 2 000,
   so the test set grows 2k / 4k / 6k); the stage's figure is the accuracy over all of them.

A method is a memory (`config.memories`: herding, condensed, random) with or without distillation
(`config.distillation`); the paper compares herding (E2E) and condensed, with and without KD.
`config.repetitions` runs of every method differ in the network's initial weights, the batches and
(for herding and random memories) the memory; within a repetition every method starts from the
same network and draws the same batches, so methods compare in pairs. The repetitions of a method
train together in one compiled program (vmapped on accelerators, one after another on CPU, as the
evaluation code decides per backend).

Decisions the paper leaves open, taken here: SGD with momentum 0.9 and weight decay 5e-4 (the
evaluation recipe's) and batches of `config.batch_size` drawn in shuffled passes over the pooled
images; distillation is E2E's soft cross-entropy between the temperature-softened distributions
(no T^2 factor) on every image of the batch; the condensed memory of a task is condensed once (by
`config.condense`, on that task's training images, with the default ConvNet) and shared by the
repetitions and both distillation settings.

After every stage the networks, memories and accuracies of every method are checkpointed (Orbax,
`<workdir>/checkpoints/<stage>`); a run started again in the same workdir resumes after the last
finished stage. Herding and random memories are saved as sets under `<workdir>/memories/`,
condensed ones in their condensation workdirs `<workdir>/condense/<task>/` (`bin/show.py` reads
both). Results: `continual.json`, `continual.md` and `continual.png` (Figure 4: accuracy per
stage, one line per method) in the workdir.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcjax import baselines, compilation
from dcjax import data as data_lib
from dcjax.apps.ranking import mean_and_std, percent
from dcjax.configuration import root_keys
from dcjax.errors import ConfigError
from dcjax.evaluate import EvalRecipe, resolve_parallel
from dcjax.nets import describe_module, get_model
from dcjax.sharding import to_host
from dcjax.support.checkpoints import RunCheckpoints
from dcjax.support.files import atomic_path, write_json, write_text
from dcjax.support.progress import progress
from dcjax.support.signals import wait_until_ready
from dcjax.synthetic_set import SyntheticSet, save_synthetic
from dcjax.training import accuracy, cross_entropy, pass_order, sgd_step

PyTree = Any
MEMORIES = ("herding", "condensed", "random")


# ----------------------------------------------------------------------------- configuration

@dataclasses.dataclass(frozen=True)
class Method:
    """A memory rule with or without knowledge distillation."""
    memory: str
    distill: bool

    @property
    def name(self) -> str:
        return f"{self.memory}_{'kd' if self.distill else 'no_kd'}"


def methods(config: Any) -> list[Method]:
    return [Method(memory, bool(distill)) for memory in config.memories for distill in config.distillation]


def validate(config: Any) -> None:
    """ConfigError naming the first unusable field of a continual-learning config."""
    memories = tuple(config.memories)
    if not memories or len(set(memories)) != len(memories) or any(m not in MEMORIES for m in memories):
        raise ConfigError(f"config.memories must list distinct memories from {MEMORIES}, got {list(memories)}")
    distillation = tuple(config.distillation)
    if not distillation or len(set(distillation)) != len(distillation) or any(not isinstance(d, bool) for d in distillation):
        raise ConfigError(f"config.distillation must list True and/or False, got {list(distillation)}")
    if len(tuple(config.tasks)) < 1:
        raise ConfigError("config.tasks must name at least one dataset, e.g. ('svhn', 'mnist', 'usps')")
    shape = tuple(config.image_shape)
    if len(shape) != 3 or not all(isinstance(v, int) and v >= 1 for v in shape):
        raise ConfigError(f"config.image_shape must be (height, width, channels) of integers >= 1, got {shape}")
    for field in ("ipc", "repetitions", "batch_size", "test_per_task"):
        if not isinstance(config[field], int) or config[field] < 1:
            raise ConfigError(f"config.{field} must be an integer >= 1, got {config[field]!r}")
    for phase in ("train", "finetune"):
        steps, lr = config[phase].steps, config[phase].lr
        if not isinstance(steps, int) or steps < 0 or not lr > 0:
            raise ConfigError(f"config.{phase} needs steps >= 0 and lr > 0, got steps={steps!r} lr={lr!r}")
    if not config.temperature > 0 or config.distillation_weight < 0:
        raise ConfigError(f"config.temperature must be > 0 and config.distillation_weight >= 0, got "
                          f"{config.temperature} and {config.distillation_weight}")
    if jax.process_count() > 1:
        raise ConfigError("continual learning runs in one process; start it on one host only")


def fingerprint(config: Any) -> dict[str, Any]:
    """The config fields that decide a run's results: a workdir's checkpoints are resumed only under
    the same ones."""
    keep = ("tasks", "image_shape", "seed", "ipc", "repetitions", "batch_size", "test_per_task", "memories",
            "distillation", "distillation_weight", "temperature", "momentum", "weight_decay")
    out = {k: config[k] for k in keep}
    out.update(train=config.train.to_dict(), finetune=config.finetune.to_dict(), net=config.net.to_dict(),
               condense=condense_fingerprint(config) if "condensed" in config.memories else None)
    return jax.tree_util.tree_map(lambda v: list(v) if isinstance(v, tuple) else v, out,
                                  is_leaf=lambda v: isinstance(v, tuple))


def condense_fingerprint(config: Any) -> dict[str, Any]:
    c = config.condense
    return {"num_iterations": c.num_iterations, "batch_real": c.batch_real, "init": c.init,
            "net": c.net.to_dict(), "model": c.model}


# ----------------------------------------------------------------------------- tasks

@dataclasses.dataclass
class Task:
    """One task: its dataset at the common image shape and its slice of the growing test set."""
    name: str
    dataset: data_lib.Dataset
    x_test: jax.Array
    y_test: jax.Array


def load_tasks(config: Any) -> list[Task]:
    """The datasets of `config.tasks`, resized to `config.image_shape`, with `config.test_per_task`
    test images of each drawn by the seed. ConfigError/DataError for tasks that do not share one
    label space, cannot be resized, or have too few test or training images."""
    shape = tuple(int(v) for v in config.image_shape)
    tasks = []
    for index, name in enumerate(config.tasks):
        dataset = data_lib.resize(data_lib.load(name, config.get("data_dir"), config.data_source), shape)
        if tasks and dataset.num_classes != tasks[0].dataset.num_classes:
            raise ConfigError(f"the tasks must share one label space, but {tasks[0].name} has "
                              f"{tasks[0].dataset.num_classes} classes and {dataset.name} {dataset.num_classes}; "
                              f"choose datasets with the same classes (e.g. digits: svhn, mnist, usps)")
        num_test = int(dataset.x_test.shape[0])
        if config.test_per_task > num_test:
            raise ConfigError(f"config.test_per_task={config.test_per_task} but {dataset.name} has only {num_test} "
                              f"test images; set config.test_per_task <= {num_test} (equal for every task)")
        data_lib.check_batch_size(dataset, config.ipc, field="ipc")
        pick = jax.random.permutation(jax.random.fold_in(root_keys(config.seed)["holdout"], index),
                                      num_test)[:config.test_per_task]
        tasks.append(Task(dataset.name, dataset, dataset.x_test[pick], dataset.y_test[pick]))
    return tasks


# ----------------------------------------------------------------------------- training

def distillation_loss(student_logits: jax.Array, teacher_logits: jax.Array, temperature: float) -> jax.Array:
    """E2E's distillation term: the cross-entropy between the teacher's and the student's softmax at
    `temperature`, -sum_i softmax(t / T)_i log softmax(s / T)_i, averaged over the batch."""
    teacher = jax.nn.softmax(jax.lax.stop_gradient(teacher_logits) / temperature, axis=-1)
    return -jnp.mean(jnp.sum(teacher * jax.nn.log_softmax(student_logits / temperature, axis=-1), axis=-1))


@dataclasses.dataclass(frozen=True)
class Phase:
    """The settings of one training phase (stage training or balanced fine-tuning); hashable, so
    that the compiled programs are cached by it."""
    steps: int
    lr: float
    batch_size: int
    momentum: float
    weight_decay: float
    distill: bool
    distillation_weight: float
    temperature: float

    def optimizer(self) -> optax.GradientTransformation:
        return EvalRecipe(momentum=self.momentum, weight_decay=self.weight_decay).optimizer(self.lr)

    def loss(self, logits: jax.Array, target: tuple[jax.Array, jax.Array | None]) -> jax.Array:
        labels, teacher_logits = target
        value = cross_entropy(logits, labels)
        if self.distill:
            value = value + self.distillation_weight * distillation_loss(logits, teacher_logits, self.temperature)
        return value


def train_phase(module: nn.Module, phase: Phase, variables: PyTree, teacher: PyTree, key: jax.Array,
                pools: Sequence[tuple[jax.Array, jax.Array]]) -> PyTree:
    """`variables` after `phase.steps` SGD steps on batches drawn from the images of `pools` taken
    together (e.g. the new task's training images and the memory), distilling from `teacher` if the
    phase distils. The pools are indexed in place, not concatenated."""
    pools = [(x, y) for x, y in pools if x.shape[0] > 0]
    sizes = np.cumsum([0] + [x.shape[0] for x, _ in pools])
    batches = pass_order(key, int(sizes[-1]), phase.steps, phase.batch_size)
    tx = phase.optimizer()

    def gather(idx):
        xb = jnp.zeros((idx.shape[0],) + pools[0][0].shape[1:], pools[0][0].dtype)
        yb = jnp.zeros(idx.shape, jnp.int32)
        for (x, y), start, stop in zip(pools, sizes[:-1], sizes[1:]):
            inside = (idx >= start) & (idx < stop)
            local = jnp.clip(idx - start, 0, stop - start - 1)
            xb = jnp.where(inside[:, None, None, None], x[local], xb)
            yb = jnp.where(inside, y[local], yb)
        return xb, yb

    def step(carry, idx):
        variables, opt_state = carry
        xb, yb = gather(idx)
        teacher_logits = module.apply(teacher, xb, train=False) if phase.distill else None
        variables, opt_state, _ = sgd_step(module.apply, tx, variables, opt_state, xb, (yb, teacher_logits),
                                           loss=phase.loss)
        return (variables, opt_state), None

    (variables, _), _ = jax.lax.scan(step, (variables, tx.init(variables["params"])), batches)
    return variables


@functools.lru_cache(maxsize=None)
def phase_program(module: nn.Module, phase: Phase, parallel: str):
    """(variables[R], teachers[R], keys[R], (x, y) shared by the repetitions, memory (x[R], y[R]))
    -> variables[R]: `train_phase` for R repetitions in one compiled program."""
    def one(variables, teacher, key, shared, memory):
        return train_phase(module, phase, variables, teacher, key, [shared, memory])

    def run(variables, teachers, keys, shared, memory):
        if parallel == "vmap":
            return jax.vmap(one, in_axes=(0, 0, 0, None, 0))(variables, teachers, keys, shared, memory)
        return jax.lax.map(lambda a: one(a[0], a[1], a[2], shared, a[3]), (variables, teachers, keys, memory))

    return compilation.jit(run)


@functools.lru_cache(maxsize=None)
def accuracy_program(module: nn.Module, batch_size: int = 500):
    """(variables[R], x, y) -> (R,) test accuracy of each repetition's network, one after another."""
    return compilation.jit(lambda variables, x, y: jax.lax.map(
        lambda v: accuracy(module.apply, v, x, y, batch_size), variables))


# ----------------------------------------------------------------------------- memories

def herding_memory(module: nn.Module, variables: PyTree, dataset: data_lib.Dataset, ipc: int) -> SyntheticSet:
    """E2E's memory: per class, the ipc training images whose running mean of the network's
    penultimate features best tracks the class mean."""
    features = baselines.embed_dataset(module, variables, dataset.x_train)
    return baselines.herding(dataset, ipc, features, {"network": describe_module(module),
                                                      "features": "the continual-learning network after stage training"})


def condensed_memory(config: Any, task: Task, index: int, workdir: str) -> SyntheticSet:
    """ipc images per class condensed by dcjax on the task's (resized) training images with
    `config.condense`, in `<workdir>/condense/<index>_<task>/` (resumable, reused once finished)."""
    import dcjax
    c = config.condense.copy_and_resolve_references()
    with c.unlocked():
        c.dataset, c.seed, c.ipc = task.name, config.seed + index, config.ipc
        c.data_dir, c.data_source = config.get("data_dir"), config.data_source
        c.eval.num_models = 0
    return dcjax.condense(c, os.path.join(workdir, "condense", f"{index}_{task.name}"), dataset=task.dataset)


def memory_key(config: Any, repetition: int, task: int) -> jax.Array:
    return jax.random.fold_in(jax.random.fold_in(root_keys(config.seed)["eval"], repetition), task)


# ----------------------------------------------------------------------------- the run

@dataclasses.dataclass
class MethodState:
    """What a method carries from stage to stage, for all repetitions: the networks (stacked) and
    the memory of the finished tasks ((R, M, H, W, C) images, (R, M) labels)."""
    variables: PyTree
    memory_x: jax.Array
    memory_y: jax.Array

    def as_dict(self) -> dict[str, Any]:
        return {"variables": self.variables, "memory_x": self.memory_x, "memory_y": self.memory_y}


def continual_network(config: Any, num_classes: int) -> nn.Module:
    """The ConvNet of `config.net` (unset fields: the default ConvNet) at the tasks' image shape."""
    return get_model("ConvNet", num_classes, tuple(int(v) for v in config.image_shape),
                     **{k: v for k, v in config.net.items() if v is not None})


def network_keys(config: Any) -> jax.Array:
    return jax.random.split(root_keys(config.seed)["init"], config.repetitions)


def phase_keys(config: Any, stage: int, phase: int) -> jax.Array:
    """The batch-order keys of one phase of one stage, one per repetition (the same for every method)."""
    base = jax.random.fold_in(jax.random.fold_in(root_keys(config.seed)["iterations"], stage), phase)
    return jax.random.split(base, config.repetitions)


def initial_state(module: nn.Module, config: Any, image_shape: tuple[int, ...]) -> MethodState:
    variables = jax.vmap(lambda k: module.init(k, jnp.zeros((1,) + image_shape), train=False))(network_keys(config))
    r = config.repetitions
    return MethodState(variables, jnp.zeros((r, 0) + image_shape, jnp.float32), jnp.zeros((r, 0), jnp.int32))


def run(config: Any, workdir: str, visible: bool = True) -> dict[str, Any]:
    """Run (or resume) the continual-learning experiment of `config` in `workdir`; returns the report
    written to continual.json."""
    validate(config)
    tasks = load_tasks(config)
    num_classes = tasks[0].dataset.num_classes
    shape = tuple(int(v) for v in config.image_shape)
    module = continual_network(config, num_classes)
    parallel = resolve_parallel(config.parallel)
    all_methods = methods(config)
    checkpoints = RunCheckpoints(workdir, max_to_keep=1)
    states, log, first_stage = _restore(checkpoints, config, module, shape, all_methods, workdir)
    condensed: dict[int, SyntheticSet] = {}
    phase = functools.partial(Phase, batch_size=config.batch_size, momentum=config.momentum,
                              weight_decay=config.weight_decay, distillation_weight=config.distillation_weight,
                              temperature=config.temperature)
    total = len(tasks) * len(all_methods)
    display = progress("continual learning", "stage of a method", first_stage * len(all_methods), total, 1, visible)
    for stage in range(first_stage, len(tasks)):
        task = tasks[stage]
        stage_log = {"task": task.name, "methods": {}}
        for method in all_methods:
            start = time.time()
            state = states[method.name]
            distill = method.distill and stage > 0
            teachers = state.variables
            train = phase(steps=config.train.steps, lr=config.train.lr, distill=distill)
            variables = phase_program(module, train, parallel)(
                state.variables, teachers, phase_keys(config, stage, 0), (task.dataset.x_train, task.dataset.y_train),
                (state.memory_x, state.memory_y))
            trained_seconds = time.time() - start
            memory = _new_memory(config, method, module, variables, task, stage, workdir, condensed)
            memory_x = jnp.concatenate([state.memory_x, jnp.stack([jnp.asarray(m.images) for m in memory])], axis=1)
            memory_y = jnp.concatenate([state.memory_y, jnp.stack([jnp.asarray(m.labels) for m in memory])], axis=1)
            if stage > 0 and config.finetune.steps > 0:
                finetune = phase(steps=config.finetune.steps, lr=config.finetune.lr, distill=distill)
                empty = (jnp.zeros((0,) + shape, jnp.float32), jnp.zeros((0,), jnp.int32))
                variables = phase_program(module, finetune, parallel)(
                    variables, teachers, phase_keys(config, stage, 1), empty, (memory_x, memory_y))
            states[method.name] = MethodState(variables, memory_x, memory_y)
            stage_log["methods"][method.name] = _test(module, variables, tasks[:stage + 1]) | {
                "train_seconds": round(trained_seconds, 1), "seconds": round(time.time() - start, 1)}
            display.update(stage * len(all_methods) + all_methods.index(method) + 1,
                           f"(stage {stage + 1} {task.name}: {method.name})")
        log.append(stage_log)
        checkpoints.save(stage, {name: s.as_dict() for name, s in states.items()},
                         {"fingerprint": fingerprint(config), "stages": log})
        checkpoints.wait()
    display.close()
    checkpoints.close()
    report = summarise(config, module, log)
    write_report(workdir, report)
    return report


def _new_memory(config: Any, method: Method, module: nn.Module, variables: PyTree, task: Task, stage: int,
                workdir: str, condensed: dict[int, SyntheticSet]) -> list[SyntheticSet]:
    """Task `stage`'s memory for every repetition of `method` (saved as sets, see the module doc)."""
    if method.memory == "condensed":
        if stage not in condensed:
            condensed[stage] = condensed_memory(config, task, stage, workdir)
        return [condensed[stage]] * config.repetitions
    sets = []
    for r in range(config.repetitions):
        if method.memory == "herding":
            one = jax.tree_util.tree_map(lambda v: v[r], variables)
            synset = herding_memory(module, one, task.dataset, config.ipc)
        else:
            synset = baselines.random_real(task.dataset, config.ipc, memory_key(config, r, stage))
        save_synthetic(os.path.join(workdir, "memories", method.name, f"repetition_{r}", f"{stage}_{task.name}"), synset)
        sets.append(synset)
    return sets


def _test(module: nn.Module, variables: PyTree, tasks: list[Task]) -> dict[str, Any]:
    """Per repetition, the accuracy on the test images of `tasks` together (every task has as many,
    so it is the mean of the per-task accuracies) and on each task."""
    per_task = [np.asarray(to_host(wait_until_ready(accuracy_program(module)(variables, t.x_test, t.y_test))))
                for t in tasks]
    return {"accuracy": np.mean(per_task, axis=0).tolist(), "per_task": {t.name: a.tolist() for t, a in zip(tasks, per_task)}}


def load_states(config: Any, workdir: str) -> dict[str, MethodState]:
    """Every method's networks and memories after the last finished stage of the run in `workdir`
    (a KeyError-free way to inspect a run: ConfigError if it holds none or another config's)."""
    tasks_shape = tuple(int(v) for v in config.image_shape)
    num_classes = data_lib.load(config.tasks[0], config.get("data_dir"), config.data_source).num_classes
    module = continual_network(config, num_classes)
    checkpoints = RunCheckpoints(workdir, max_to_keep=1)
    try:
        if checkpoints.latest_step() is None:
            raise ConfigError(f"{workdir} holds no finished stage of a continual-learning run")
        return _restore(checkpoints, config, module, tasks_shape, methods(config), workdir)[0]
    finally:
        checkpoints.close()


def _restore(checkpoints: RunCheckpoints, config: Any, module: nn.Module, shape: tuple[int, ...],
             all_methods: list[Method], workdir: str) -> tuple[dict[str, MethodState], list, int]:
    """(states, stage log, first stage to run): from the newest checkpoint, or fresh."""
    fresh = initial_state(module, config, shape)
    stage = checkpoints.latest_step()
    if stage is None:
        return {m.name: fresh for m in all_methods}, [], 0
    memory = (stage + 1) * config.ipc * module.num_classes
    r = config.repetitions
    template = {"variables": fresh.variables, "memory_x": jnp.zeros((r, memory) + shape, jnp.float32),
                "memory_y": jnp.zeros((r, memory), jnp.int32)}
    saved, meta = checkpoints.restore(stage, {m.name: template for m in all_methods})
    if meta.get("fingerprint") != fingerprint(config):
        raise ConfigError(f"{workdir} holds a continual-learning run with other settings "
                          f"({meta.get('fingerprint')}); use the original config or a new --workdir")
    states = {name: MethodState(s["variables"], s["memory_x"], s["memory_y"]) for name, s in saved.items()}
    return states, list(meta["stages"]), stage + 1


# ----------------------------------------------------------------------------- the report

def summarise(config: Any, module: nn.Module, log: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method and stage: mean +- std over repetitions of the accuracy on all tasks so far."""
    names = [m.name for m in methods(config)]
    return {
        "protocol": "task-incremental, E2E-style (paper section 3.2, Figure 4)", "tasks": list(config.tasks),
        "image_shape": list(config.image_shape), "ipc": config.ipc, "repetitions": config.repetitions,
        "network": describe_module(module), "train": config.train.to_dict(), "finetune": config.finetune.to_dict(),
        "batch_size": config.batch_size, "test_per_task": config.test_per_task,
        "distillation_weight": config.distillation_weight, "temperature": config.temperature,
        "methods": {name: {"stages": [mean_and_std(stage["methods"][name]["accuracy"]) for stage in log],
                           "per_task": [stage["methods"][name]["per_task"] for stage in log],
                           "seconds": [stage["methods"][name]["seconds"] for stage in log]} for name in names},
        "stages": log,
    }


def markdown(report: dict[str, Any]) -> str:
    stages = [f"T{i + 1} (+{task})" for i, task in enumerate(report["tasks"])]
    lines = [f"# Continual learning: {' -> '.join(report['tasks'])} (paper Figure 4 layout)", "",
             f"Test accuracy % on all tasks so far ({report['test_per_task']} test images per task), mean +- std over "
             f"{report['repetitions']} repetitions; memory {report['ipc']} images per class per task; "
             f"{report['train']['steps']} training steps (lr {report['train']['lr']}) and "
             f"{report['finetune']['steps']} balanced fine-tuning steps (lr {report['finetune']['lr']}) per stage, "
             f"batch {report['batch_size']}; KD weight {report['distillation_weight']}, temperature "
             f"{report['temperature']}; network {report['network']}.", "",
             "| method | " + " | ".join(stages) + " | seconds |", "|---" * (len(stages) + 2) + "|"]
    for name, m in report["methods"].items():
        cells = [percent(s) for s in m["stages"]] + ["-"] * (len(stages) - len(m["stages"]))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {sum(m['seconds']):.0f} |")
    return "\n".join(lines) + "\n"


def write_report(workdir: str, report: dict[str, Any]) -> None:
    """continual.json, continual.md and continual.png in `workdir`."""
    write_json(os.path.join(workdir, "continual.json"), report)
    write_text(os.path.join(workdir, "continual.md"), markdown(report))
    plot(report, os.path.join(workdir, "continual.png"))


def plot(report: dict[str, Any], path: str) -> None:
    """Figure 4: accuracy after each stage, one line per method (error bars: std over repetitions)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for name, m in report["methods"].items():
        means = [100 * s["mean"] for s in m["stages"]]
        stds = [100 * s["std"] for s in m["stages"]]
        ax.errorbar(np.arange(1, len(means) + 1), means, yerr=stds, marker="o", capsize=3, label=name)
    ax.set_xticks(np.arange(1, len(report["tasks"]) + 1), [f"T{i + 1}" for i in range(len(report["tasks"]))])
    ax.set_xlabel("training stage")
    ax.set_ylabel("test accuracy % (all tasks so far)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
