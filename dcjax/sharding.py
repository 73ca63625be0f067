"""Using every device: a (classes, batch) device mesh, class-sharded matching and evaluation.

Gradient matching is independent per class given the network, so the class axis is the natural
one to split: each device matches its own classes against its own share of the real batches, and
the synthetic images and their optimiser state live sharded by class (`NamedSharding`). When there
are fewer classes than devices, the second mesh axis splits every class's real batch, and the
real-batch gradient is averaged over that axis (`pmean`) before it is compared. The per-device
work is written with `jax.shard_map`, so each device runs the same class-wise program as a single
device would (unrolled, mapped or vmapped over its classes), and the only cross-device traffic is
the all-gather of the images for the network update and the `pmean` of real gradients.

Uneven splits: a class count not divisible by the class axis is padded with empty classes (zero
images, masked out of the loss and the gradient), at most `class_shards - 1` of them; checkpoints
and saved sets never contain the padding, so a run resumes on any device count. The real batch
(`batch_real`) must divide evenly over the batch axis.

Multi-host: after `jax.distributed.initialize()`, `jax.devices()` lists every host's devices and
the same mesh spans them all; arrays are put on the mesh from identical host values on every
process, and `to_host` gathers a sharded result back.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from dcjax.errors import ConfigError
from dcjax.matching import matching_loss_and_grad

PyTree = Any
DEFAULT_AXIS_NAMES = ("classes", "batch")


def auto_mesh_shape(num_devices: int, num_classes: int) -> tuple[int, int]:
    """(class shards, batch shards): all devices on classes, unless there are fewer classes than
    devices, then the largest divisor of the device count not above the class count."""
    if num_classes >= num_devices:
        return num_devices, 1
    class_shards = max(d for d in range(1, num_classes + 1) if num_devices % d == 0)
    return class_shards, num_devices // class_shards


def make_mesh(shape: Sequence[int] | None, num_classes: int,
              axis_names: Sequence[str] = DEFAULT_AXIS_NAMES, devices: Sequence[Any] | None = None) -> Mesh:
    """A 2-D (classes, batch) mesh over `devices` (default: every device of every process).

    `shape=None` picks `auto_mesh_shape`; an explicit shape must use exactly all the devices, so a
    run never silently leaves devices idle.
    """
    devices = list(jax.devices() if devices is None else devices)
    if len(axis_names) != 2 or len(set(axis_names)) != 2:
        raise ConfigError(f"config.mesh.axis_names must be two distinct names (classes axis, batch axis), "
                          f"got {tuple(axis_names)}")
    if shape is None:
        shape = auto_mesh_shape(len(devices), num_classes)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1 or math.prod(shape) != len(devices):
        raise ConfigError(f"config.mesh.shape={shape} does not use the {len(devices)} available devices; give "
                          f"(class shards, batch shards) with product {len(devices)}, or leave it unset")
    return jax.make_mesh(shape, tuple(axis_names), axis_types=(AxisType.Auto,) * 2, devices=devices)


@dataclasses.dataclass(frozen=True)
class ClassLayout:
    """How the classes of a condensation are placed on a mesh (see the module docstring)."""
    mesh: Mesh
    num_classes: int

    @property
    def class_axis(self) -> str:
        return self.mesh.axis_names[0]

    @property
    def batch_axis(self) -> str:
        return self.mesh.axis_names[1]

    @property
    def class_shards(self) -> int:
        return self.mesh.shape[self.class_axis]

    @property
    def batch_shards(self) -> int:
        return self.mesh.shape[self.batch_axis]

    @property
    def padded_classes(self) -> int:
        return -(-self.num_classes // self.class_shards) * self.class_shards

    def by_class(self) -> NamedSharding:
        return NamedSharding(self.mesh, P(self.class_axis))

    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, P())

    def pad(self, x: jax.Array) -> jax.Array:
        """Append empty (zero) classes along axis 0 up to `padded_classes`."""
        extra = self.padded_classes - x.shape[0]
        return jnp.pad(x, [(0, extra)] + [(0, 0)] * (x.ndim - 1)) if extra else x

    def unpad(self, x: jax.Array) -> jax.Array:
        return x[:self.num_classes]

    def put_by_class(self, tree: PyTree) -> PyTree:
        """Host or device arrays with a leading class axis -> padded, class-sharded global arrays."""
        return jax.tree_util.tree_map(
            lambda x: jax.device_put(np.asarray(self.pad(jnp.asarray(x))), self.by_class()), tree)

    def put_replicated(self, tree: PyTree) -> PyTree:
        """`put_replicated` on this layout's mesh."""
        return put_replicated(tree, self.mesh)

    def matching_loss_and_grad(self, apply_fn: Callable, params: PyTree, frozen: PyTree, syn: jax.Array,
                               real: jax.Array, metric: str, class_parallel: str,
                               class_chunk: int | None) -> tuple[jax.Array, jax.Array]:
        """`dcjax.matching.matching_loss_and_grad` with each device matching its own classes.

        `syn` is padded (padded_classes, ipc, ...), `real` unpadded (num_classes, n, ...) with n a
        multiple of `batch_shards` (`condensation.check_fits`); the padding classes' losses and
        gradients are zero.
        """
        real = jax.lax.with_sharding_constraint(self.pad(real), NamedSharding(
            self.mesh, P(self.class_axis, self.batch_axis)))
        ids = jnp.arange(self.padded_classes)
        valid = ids < self.num_classes
        labels = jnp.where(valid, ids, 0)
        batch_axis = self.batch_axis
        reduce_real = (lambda g: jax.lax.pmean(g, batch_axis)) if self.batch_shards > 1 else None

        def local(params, frozen, syn, real, labels, valid):
            losses, grads = matching_loss_and_grad(apply_fn, params, frozen, syn, real, metric, class_parallel,
                                                   class_chunk, labels=labels, reduce_real=reduce_real)
            mask = valid.astype(grads.dtype)
            return losses * mask, grads * mask.reshape((-1,) + (1,) * (grads.ndim - 1))

        # check_vma=False: each device's parameter gradients must stay local (one class's gradient,
        # not summed over devices, which is what shard_map's automatic transposition of a replicated
        # input would give); the only cross-device sum is the explicit pmean above, after which the
        # outputs are equal along the batch axis, as out_specs say.
        by_class = P(self.class_axis)
        return jax.shard_map(
            local, mesh=self.mesh,
            in_specs=(P(), P(), by_class, P(self.class_axis, self.batch_axis), by_class, by_class),
            out_specs=(by_class, by_class), check_vma=False)(params, frozen, syn, real, labels, valid)


def class_layout(config: Any, num_classes: int, devices: Sequence[Any] | None = None) -> ClassLayout:
    """The layout a config asks for, over every device (one device: a trivial 1 x 1 mesh, on which
    the sharded programs are the plain single-device ones)."""
    devices = list(jax.devices() if devices is None else devices)
    mesh_config = config.get("mesh") or {}
    shape = mesh_config.get("shape")
    axis_names = tuple(mesh_config.get("axis_names") or DEFAULT_AXIS_NAMES)
    return ClassLayout(make_mesh(shape, num_classes, axis_names, devices), num_classes)


def put_replicated(tree: PyTree, mesh: Mesh) -> PyTree:
    """Identical values on every process -> one array per leaf, replicated over the whole `mesh`."""
    return jax.tree_util.tree_map(lambda x: jax.device_put(to_host(x), NamedSharding(mesh, P())), tree)


def to_host(x: jax.Array) -> np.ndarray:
    """A (possibly multi-process, sharded) array as one NumPy array on this host."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


def shard_over_devices(run: Callable[..., jax.Array], mesh: Mesh, num_items: int) -> Callable[..., jax.Array]:
    """`run(items, *shared) -> (n,)` applied with `items` (a pytree of arrays with a common leading
    axis) split over every device of `mesh` and `shared` replicated; pads the items to a multiple of
    the device count (repeating the last one) and drops the padding's results."""
    axes = tuple(mesh.axis_names)
    devices = mesh.devices.size
    padded = -(-num_items // devices) * devices

    def sharded(items: PyTree, *shared: Any) -> jax.Array:
        if padded > num_items:
            items = jax.tree_util.tree_map(
                lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], padded - num_items, axis=0)]), items)
        out = jax.shard_map(lambda i, *s: run(i, *s), mesh=mesh,
                            in_specs=(P(axes),) + (P(),) * len(shared), out_specs=P(axes))(items, *shared)
        return out[:num_items]

    return sharded


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join a multi-process run (one process per host) before any other JAX call.

    On Cloud TPU VMs and SLURM/Open MPI clusters every argument can stay None (JAX detects the
    cluster); elsewhere give all three. CPU processes exchange collectives through Gloo.
    """
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id)
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"could not join the multi-process run ({str(err).splitlines()[0]}); give "
                          f"--coordinator_address=HOST:PORT --num_processes=N --process_id=I on every "
                          f"process, or launch on a TPU VM / SLURM allocation where JAX detects them") from err
