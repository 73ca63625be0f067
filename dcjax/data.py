"""Datasets for condensation: loading, normalising, and per-class sampling of real images.

`load(name, data_dir, source)` returns a `Dataset` whose arrays sit on the device once, so that
the jitted outer step can draw class-wise real batches (`sample_real`) without host round trips.
Images are float32 NHWC, normalised per channel as in the reference code: (pixel/255 - mean) / std.

Sources (`source`, the config field `data_source`):
  * "sklearn": scikit-learn's bundled 8x8 digits ("digits"), no download. Split: 75/25 by
    `train_test_split(test_size=0.25, stratify=y, random_state=0)` (1347 train / 450 test).
  * "npz": a NumPy .npz with x_train, y_train, x_test, y_test (uint8 NHWC or NHW); `data_dir` is
    the file or a directory holding `<name>.npz`. Read with allow_pickle=False.
  * "idx": a directory with the MNIST/Fashion-MNIST IDX files (optionally .gz).
  * "tfds": a prepared tensorflow-datasets copy, read through `tfds.data_source` (random access,
    array_record format), never downloading and without TensorFlow.
  * "auto": digits -> sklearn; an npz found in data_dir -> npz; IDX files -> idx; else tfds.
"""
from __future__ import annotations

import errno
import functools
import gzip
import os
import zipfile
import zlib
from typing import Any, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from dcjax.errors import ConfigError, DataError

# Per-channel (mean, std) in [0, 1] pixel units, from the reference code; other datasets use
# statistics of their own training split.
NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2861,), (0.3530,)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_DIGIT_NAMES = tuple(str(i) for i in range(10))
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": _DIGIT_NAMES, "svhn": _DIGIT_NAMES, "digits": _DIGIT_NAMES, "usps": _DIGIT_NAMES,
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                "truck"),
}
TFDS_NAMES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist", "svhn": "svhn_cropped",
              "cifar10": "cifar10", "cifar100": "cifar100"}
KNOWN_DATASETS = tuple(sorted({*TFDS_NAMES, "digits", "usps"}))
SOURCES = ("auto", "tfds", "npz", "idx", "sklearn")
_ALIASES = {"fashionmnist": "fashion_mnist"}  # the reference's spelling "FashionMNIST"
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
              "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


@flax.struct.dataclass
class Dataset:
    """A train/test split on device plus a per-class index of the training set (a pytree).

    `class_index[c, :class_counts[c]]` are the x_train indices of class c (rows padded with 0),
    which lets `sample_real` draw every class's batch in one vectorised, jittable op.
    """
    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array
    class_index: jax.Array
    class_counts: jax.Array
    name: str = flax.struct.field(pytree_node=False)
    mean: tuple[float, ...] = flax.struct.field(pytree_node=False)
    std: tuple[float, ...] = flax.struct.field(pytree_node=False)
    class_names: tuple[str, ...] = flax.struct.field(pytree_node=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])


def _canonical(name: str) -> str:
    key = name.lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    return key if key in KNOWN_DATASETS else name


def load(name: str, data_dir: str | None = None, source: str = "auto") -> Dataset:
    """Load dataset `name` from `source` (see the module docstring) and put it on the device."""
    name = _canonical(name)
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}; set config.data_source to one of {SOURCES}")
    data_dir = os.path.expanduser(str(data_dir)) if data_dir else None  # "" means unset
    if data_dir is not None:
        if source != "sklearn" and not os.path.exists(data_dir):
            raise DataError(f"data_dir {data_dir} does not exist; set config.data_dir to the dataset's "
                            f".npz file, IDX directory or tensorflow-datasets directory")
    if source == "auto":
        if name == "digits":
            source = "sklearn"
        elif _npz_path(name, data_dir) is not None:
            source = "npz"
        elif _idx_dir(data_dir, name) is not None:
            source = "idx"
        elif name in TFDS_NAMES:
            source = "tfds"
        elif name in KNOWN_DATASETS:
            raise DataError(f"dataset {name!r} has no tensorflow-datasets copy; set config.data_dir to "
                            f"{name}.npz (arrays x_train, y_train, x_test, y_test) or its directory")
        else:
            raise DataError(f"unknown dataset {name!r} and no {name}.npz in data_dir={data_dir}; set "
                            f"config.dataset to one of {KNOWN_DATASETS} or config.data_dir to {name}.npz")
    if source == "sklearn":
        arrays, names = _load_digits(name), None
    elif source == "npz":
        arrays, names = _load_npz(name, data_dir), None
    elif source == "idx":
        arrays, names = _load_idx(name, data_dir), None
    else:
        arrays, names = _load_tfds(name, data_dir)
    mean, std = NORMALISATION.get(name, (None, None))
    return from_arrays(name, *arrays, mean=mean, std=std, class_names=names)


def from_arrays(name: str, x_train: Any, y_train: Any, x_test: Any, y_test: Any, *,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                class_names: Sequence[str] | None = None) -> Dataset:
    """Validate host arrays (uint8 or [0,1] float images, NHWC or NHW) and build a `Dataset`.

    mean/std default to the training set's per-channel statistics; class_names default to the
    known names for `name` (if the class count matches), else str(label). Labels must be
    0..K-1 with every class present in the training split.
    """
    x_train, x_test = _as_nhwc(x_train, "x_train", name), _as_nhwc(x_test, "x_test", name)
    y_train, y_test = _as_labels(y_train, "y_train", name), _as_labels(y_test, "y_test", name)
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(x) != len(y) or len(x) == 0:
            raise DataError(f"{name}: x_{split} has {len(x)} images but y_{split} has {len(y)} labels; "
                            f"fix the data file so they match and are non-empty")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{name}: x_train images are {x_train.shape[1:]} but x_test images are "
                        f"{x_test.shape[1:]}; fix the data file so both have the same H, W, C")
    num_classes = len(class_names) if class_names is not None else int(y_train.max()) + 1
    counts = np.bincount(y_train, minlength=num_classes)
    if len(counts) > num_classes or y_test.max() >= num_classes:
        raise DataError(f"{name}: a label in y_train or y_test is >= {num_classes}, the number of "
                        f"classes; labels must be 0..{num_classes - 1}")
    if (counts == 0).any():
        missing = np.flatnonzero(counts == 0).tolist()
        raise DataError(f"{name}: labels must be 0..{num_classes - 1} with every class in y_train, but "
                        f"classes {missing} have no training images; relabel the data contiguously")
    if class_names is None:
        known = CLASS_NAMES.get(name)
        class_names = known if known and len(known) == num_classes else tuple(map(str, range(num_classes)))
    x_train, x_test = _to_unit(x_train, "x_train", name), _to_unit(x_test, "x_test", name)
    channels = x_train.shape[-1]
    if mean is None or std is None:
        mean, std = _channel_stats(x_train)
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise DataError(f"{name}: need {channels} per-channel mean/std values with std > 0, got "
                        f"mean={mean} std={std}; check the images' channel count")
    for x in (x_train, x_test):  # in place, float32
        x -= np.asarray(mean, np.float32)
        x /= np.asarray(std, np.float32)
    index = _class_index(y_train, counts)
    put = jax.device_put  # one host->device copy each (much faster than jnp.asarray for big arrays)
    return Dataset(x_train=put(x_train), y_train=put(y_train.astype(np.int32)), x_test=put(x_test),
                   y_test=put(y_test.astype(np.int32)), class_index=put(index),
                   class_counts=put(counts.astype(np.int32)), name=name, mean=mean, std=std,
                   class_names=tuple(map(str, class_names)))


def _class_index(y_train: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(num_classes, max count) int32: row c lists the training indices of class c, padded with 0."""
    order = np.argsort(y_train, kind="stable")
    starts = np.cumsum(counts) - counts
    index = np.zeros((len(counts), counts.max()), np.int32)
    index[y_train[order], np.arange(len(order)) - starts[y_train[order]]] = order
    return index


def default_holdout(num_train: int) -> int:
    """The validation split architecture search holds out: 5 000 training images (the paper's, of
    CIFAR-10's 50 000), or 10% of a training set smaller than 50 000."""
    return 5000 if num_train >= 50000 else num_train // 10


def hold_out(dataset: Dataset, size: int, key: jax.Array) -> tuple[Dataset, tuple[jax.Array, jax.Array]]:
    """(the dataset without `size` training images drawn uniformly by `key`, (those images, labels)).

    The held-out images are a validation split no proxy set, condensation or training of the rest
    sees; the same (size, key) always holds out the same images. The rest keeps the dataset's
    normalisation and test split.
    """
    num_train = int(dataset.x_train.shape[0])
    if not 1 <= size < num_train:
        raise ConfigError(f"cannot hold out {size} of {dataset.name}'s {num_train} training images; "
                          f"choose a holdout size from 1 to {num_train - 1}")
    held = np.asarray(jax.random.permutation(key, num_train)[:size])
    keep = np.setdiff1d(np.arange(num_train), held)
    y_rest = np.asarray(dataset.y_train)[keep]
    counts = np.bincount(y_rest, minlength=dataset.num_classes)
    if (counts == 0).any():
        raise ConfigError(f"holding out {size} of {dataset.name}'s training images leaves classes "
                          f"{np.flatnonzero(counts == 0).tolist()} without training images; hold out fewer")
    rest = dataset.replace(x_train=dataset.x_train[keep], y_train=jnp.asarray(y_rest),
                           class_index=jnp.asarray(_class_index(y_rest, counts)),
                           class_counts=jnp.asarray(counts.astype(np.int32)))
    return rest, (dataset.x_train[held], dataset.y_train[held])


def resize(dataset: Dataset, image_shape: Sequence[int]) -> Dataset:
    """The dataset with every image resized to `image_shape` (H, W, C): bilinear (antialiased when
    shrinking) in the normalised space, grey-scale repeated into C channels, as continual learning
    puts SVHN, MNIST and USPS at 32x32 RGB. Normalisation is kept (the resize is an average of
    pixels, so it commutes with the per-channel affine normalisation); returns `dataset` itself
    when the shape is already right. DataError for channels that cannot be converted."""
    height, width, channels = (int(v) for v in image_shape)
    have = dataset.image_shape
    if min(height, width, channels) < 1:
        raise DataError(f"cannot resize {dataset.name} to {tuple(image_shape)}: sizes must be >= 1")
    if have[2] not in (1, channels):
        raise DataError(f"cannot turn {dataset.name}'s {have[2]}-channel images into {channels}-channel ones "
                        f"(only 1 -> C by repetition); choose an image shape with {have[2]} channels")
    if tuple(have) == (height, width, channels):
        return dataset

    @jax.jit
    def convert(x: jax.Array) -> jax.Array:
        x = jax.image.resize(x, (x.shape[0], height, width, x.shape[3]), "bilinear")
        return jnp.repeat(x, channels // x.shape[3], axis=3)

    def convert_all(x: jax.Array, chunk: int = 8192) -> jax.Array:
        return jnp.concatenate([convert(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])

    repeat = channels // have[2]
    return dataset.replace(x_train=convert_all(dataset.x_train), x_test=convert_all(dataset.x_test),
                           mean=dataset.mean * repeat, std=dataset.std * repeat)


def class_subset(dataset: Dataset, classes: Sequence[int]) -> Dataset:
    """The dataset restricted to `classes` (training and test images), relabelled 0..len-1 in the
    order given: class `classes[i]` becomes label i. Normalisation is kept."""
    classes = [int(c) for c in classes]
    if not classes or len(set(classes)) != len(classes) or not all(0 <= c < dataset.num_classes for c in classes):
        raise ConfigError(f"a class subset of {dataset.name} needs distinct classes in 0..{dataset.num_classes - 1}, "
                          f"got {classes}")
    relabel = np.full(dataset.num_classes, -1, np.int64)
    relabel[classes] = np.arange(len(classes))
    parts = []
    for x, y in ((dataset.x_train, dataset.y_train), (dataset.x_test, dataset.y_test)):
        new = relabel[np.asarray(y)]
        keep = np.flatnonzero(new >= 0)
        parts += [x[jnp.asarray(keep)], new[keep]]
    counts = np.bincount(parts[1], minlength=len(classes))
    return dataset.replace(x_train=parts[0], y_train=jnp.asarray(parts[1], jnp.int32), x_test=parts[2],
                           y_test=jnp.asarray(parts[3], jnp.int32),
                           class_index=jnp.asarray(_class_index(parts[1], counts)),
                           class_counts=jnp.asarray(counts.astype(np.int32)),
                           class_names=tuple(dataset.class_names[c] for c in classes))


@functools.partial(jax.jit, static_argnames="n")
def sample_class_indices(key: jax.Array, class_index: jax.Array, class_counts: jax.Array,
                         n: int) -> jax.Array:
    """(num_classes, n) int32 x_train indices: n distinct uniform picks per class (jittable).

    Equivalent to the reference's "first n of a random permutation of the class": the n smallest
    of i.i.d. uniform scores, with padded slots scored +inf. Assumes n <= every class count (see
    `check_batch_size`); otherwise padding indices (0) would be returned.
    """
    scores = jax.random.uniform(key, class_index.shape)
    valid = jnp.arange(class_index.shape[1])[None, :] < class_counts[:, None]
    _, slots = jax.lax.top_k(-jnp.where(valid, scores, jnp.inf), n)
    return jnp.take_along_axis(class_index, slots, axis=1)


def sample_real(key: jax.Array, dataset: Dataset, n: int) -> jax.Array:
    """(num_classes, n, H, W, C) real training images, n distinct ones per class (jittable).

    Raises SampleSizeError unless 1 <= n <= the smallest class's training count; inside a trace the
    class counts are not known, only the largest class's, so callers check their config values
    beforehand with `check_batch_size`.
    """
    _check_sample_size(dataset, n, "sample_real's n", "call it with n")
    return _sample_real(key, dataset, n)


@functools.partial(jax.jit, static_argnames="n")
def _sample_real(key: jax.Array, dataset: Dataset, n: int) -> jax.Array:
    return dataset.x_train[sample_class_indices(key, dataset.class_index, dataset.class_counts, n)]


class SampleSizeError(ConfigError, DataError):
    """A per-class sample size (a config value) outside 1..the smallest class's training count.

    Both a ConfigError (the value to change is in the config) and a DataError (the limit comes from
    the data), so that callers catching either kind see it.
    """


def check_batch_size(dataset: Dataset, n: int, field: str = "batch_real") -> None:
    """Raise SampleSizeError unless 1 <= n <= the smallest class's training count (sampling is
    without replacement, which `sample_class_indices` does not check inside jit). `field` is the
    config field n comes from (batch_real, bn_batch_per_class, ipc), named in the message."""
    _check_sample_size(dataset, n, f"config.{field}", f"set config.{field}")


def _check_sample_size(dataset: Dataset, n: int, name: str, fix: str) -> None:
    """The check behind `check_batch_size` and `sample_real`; `name` is what n is called and `fix`
    starts the advice, e.g. ("config.ipc", "set config.ipc")."""
    if n < 1:
        raise SampleSizeError(f"{name} must be >= 1, got {n}")
    if isinstance(dataset.class_counts, jax.core.Tracer):  # in a trace: only the largest count is static
        largest = dataset.class_index.shape[1]
        if n > largest:
            raise SampleSizeError(f"{name}={n} but no {dataset.name} class has more than {largest} training "
                                  f"images; {fix} between 1 and the smallest class's count")
        return
    counts = np.asarray(dataset.class_counts)
    smallest = int(counts.argmin())
    if n > counts[smallest]:
        raise SampleSizeError(f"{name}={n} but {dataset.name} class {smallest} ({dataset.class_names[smallest]}) "
                              f"has only {counts[smallest]} training images to draw {n} distinct ones from; "
                              f"{fix} between 1 and {counts[smallest]}")


def denormalise(images: Any, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """Undo the normalisation: images in [0, 1] (clipped), e.g. for PNG grids."""
    return jnp.clip(jnp.asarray(images) * jnp.asarray(std) + jnp.asarray(mean), 0.0, 1.0)


# ----------------------------------------------------------------------------- host helpers

def _as_nhwc(x: Any, field: str, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(f"{name}: {field} must be 4-D (N, H, W, C) or 3-D (N, H, W), got shape {x.shape}")
    return x


def _as_labels(y: Any, field: str, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name}: {field} must be a 1-D integer array, got {y.dtype} shape {y.shape}")
    if len(y) and y.min() < 0:
        raise DataError(f"{name}: {field} has negative labels; labels must be 0..K-1")
    return y.astype(np.int64)


def _to_unit(x: np.ndarray, field: str, name: str) -> np.ndarray:
    """Images -> a new float32 array in [0, 1] (integers are /255, floats must already be in [0, 1])."""
    if np.issubdtype(x.dtype, np.integer):
        if x.dtype != np.uint8 and (x.min() < 0 or x.max() > 255):
            raise DataError(f"{name}: integer {field} must be pixel values 0..255")
        return np.multiply(x, np.float32(1 / 255), dtype=np.float32)
    if np.issubdtype(x.dtype, np.floating) and x.size and 0 <= x.min() and x.max() <= 1:
        return x.astype(np.float32)  # always a copy, normalised in place later
    raise DataError(f"{name}: {field} must be uint8 pixels or floats in [0, 1], got {x.dtype}")


def _channel_stats(x: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std of NHWC data, in float64 without a full-size copy."""
    total, squares = np.zeros(x.shape[-1]), np.zeros(x.shape[-1])
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].astype(np.float64)
        total += part.sum(axis=(0, 1, 2))
        squares += np.square(part).sum(axis=(0, 1, 2))
    count = x.size // x.shape[-1]
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))


def _load_digits(name: str) -> tuple[np.ndarray, ...]:
    if name != "digits":
        raise DataError(f"data_source 'sklearn' only provides 'digits', not {name!r}; set "
                        f"config.data_source='auto' or config.dataset='digits'")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, stratify=digits.target, random_state=0)
    return x_train, y_train, x_test, y_test


def _npz_path(name: str, data_dir: str | None) -> str | None:
    if data_dir is None:
        return None
    if os.path.isfile(data_dir) and data_dir.endswith(".npz"):
        return data_dir
    candidate = os.path.join(data_dir, f"{name}.npz")
    return candidate if os.path.isfile(candidate) else None


def _load_npz(name: str, data_dir: str | None) -> tuple[np.ndarray, ...]:
    path = _npz_path(name, data_dir)
    if path is None:
        raise DataError(f"no {name}.npz found at data_dir={data_dir}; set config.data_dir to the .npz "
                        f"file (arrays {', '.join(_NPZ_KEYS)}) or the directory holding {name}.npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in _NPZ_KEYS if k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"cannot read {path} as a plain .npz ({_first_line(e)}); re-save it with "
                        f"numpy.savez of numeric arrays {', '.join(_NPZ_KEYS)}") from e
    missing = [k for k in _NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks arrays {missing}; it needs {', '.join(_NPZ_KEYS)} "
                        f"(uint8 NHWC or NHW images, integer labels)")
    return tuple(arrays[k] for k in _NPZ_KEYS)


def _idx_dir(data_dir: str | None, name: str) -> str | None:
    if data_dir is None or not os.path.isdir(data_dir):
        return None
    for directory in (data_dir, os.path.join(data_dir, name)):
        first = os.path.join(directory, _IDX_FILES["x_train"])
        if os.path.isfile(first) or os.path.isfile(first + ".gz"):
            return directory
    return None


def _read_idx(path: str, ndim: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes (magic 0x0000 0x08 ndim, big-endian uint32 dims)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read IDX file {path} ({e}); re-download the MNIST-format files") from e
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:4] != bytes((0, 0, 8, ndim)):
        raise DataError(f"{path} is not an IDX file of {ndim}-D unsigned bytes (bad magic number); "
                        f"re-download the MNIST-format files")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    if len(raw) != header + int(np.prod(dims)):
        raise DataError(f"{path} is truncated or corrupt ({len(raw) - header} data bytes for shape "
                        f"{dims}); re-download the MNIST-format files")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _load_idx(name: str, data_dir: str | None) -> tuple[np.ndarray, ...]:
    directory = _idx_dir(data_dir, name)
    if directory is None:
        raise DataError(f"no {_IDX_FILES['x_train']}[.gz] in data_dir={data_dir}; set config.data_dir "
                        f"to the directory holding the four MNIST-format IDX files")
    arrays = []
    for key, filename in _IDX_FILES.items():
        path = os.path.join(directory, filename)
        if not os.path.isfile(path):
            path += ".gz"
        if not os.path.isfile(path):
            raise DataError(f"missing IDX file {filename}[.gz] in {directory}; it needs "
                            f"{', '.join(_IDX_FILES.values())}")
        arrays.append(_read_idx(path, 3 if key.startswith("x") else 1))
    return tuple(arrays)


def _load_tfds(name: str, data_dir: str | None) -> tuple[tuple[np.ndarray, ...], tuple[str, ...] | None]:
    """Read train/test of a prepared tensorflow-datasets copy via random access (no TensorFlow).

    Any failure becomes a DataError: "not prepared" (with the command that prepares it) only when
    tensorflow-datasets finds no copy; otherwise the real exception's type and first line, the
    path and a fix (permissions, another version, a damaged copy).
    """
    if name not in TFDS_NAMES:
        raise DataError(f"dataset {name!r} is not in tensorflow-datasets here (known: "
                        f"{tuple(TFDS_NAMES)}); set config.data_dir to {name}.npz instead")
    import tensorflow_datasets as tfds  # slow import, only for this source
    tfds_name = TFDS_NAMES[name]
    try:
        sources = tfds.data_source(tfds_name, split=["train", "test"], data_dir=data_dir, download=False)
        arrays = [array for source in sources for array in _read_tfds_split(source)]
    except Exception as e:  # noqa: BLE001 - tfds raises many types; _tfds_error says which and why
        raise _tfds_error(tfds, name, data_dir, e) from e
    info = getattr(sources[0], "dataset_info", None)
    try:
        names = tuple(info.features["label"].names)
    except (AttributeError, KeyError, TypeError):
        names = None
    return tuple(arrays), names


def _read_tfds_split(source: Any) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, int64 labels) of one random-access tfds split."""
    n = len(source)
    first = np.asarray(source[0]["image"]) if n else np.zeros((0, 0, 0), np.uint8)
    images, labels = np.empty((n,) + first.shape, np.uint8), np.empty(n, np.int64)
    for i in range(n):  # per item: as fast as __getitems__ here (PNG decoding dominates)
        example = source[i]
        images[i], labels[i] = example["image"], example["label"]
    return images, labels


def _tfds_error(tfds: Any, name: str, data_dir: str | None, error: Exception) -> DataError:
    """The DataError for a failed tensorflow-datasets read of `name`, naming its real cause."""
    tfds_name = TFDS_NAMES[name]
    root = data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")
    prepare = (f"python -c \"import tensorflow_datasets as tfds; tfds.builder('{tfds_name}', "
               f"file_format='array_record').download_and_prepare()\" (needs tensorflow)")
    or_npz = f"or set config.data_dir=/path/to/{name}.npz"
    builder = _tfds_builder(tfds, tfds_name, data_dir)
    path = getattr(builder, "data_dir", None) or os.path.join(root, tfds_name)
    reason = _first_line(error)
    if _is_permission_error(error):
        return DataError(f"cannot read {tfds_name} at {path}: {reason}; give this user read access to "
                         f"{root} (chmod/chown) {or_npz}")
    versions = _tfds_versions(root, tfds_name)
    wanted = str(getattr(builder, "version", ""))
    if builder is not None and not _is_prepared(builder) and wanted not in versions:
        if not versions:
            return DataError(f"{tfds_name} is not prepared in {root} and dcjax never downloads; run {prepare} "
                             f"on a machine with internet and set config.data_dir to its directory, {or_npz}")
        return DataError(f"{tfds_name} in {root} is prepared at version(s) {', '.join(versions)} but this "
                         f"tensorflow-datasets {tfds.__version__} reads version {wanted} ({reason}); re-prepare "
                         f"it with {prepare}, install the tensorflow-datasets that prepared it, {or_npz}")
    return DataError(f"cannot read {tfds_name} at {path}: {reason}; if the copy is damaged or not in "
                     f"array_record format re-prepare it with {prepare}, {or_npz}")


def _tfds_builder(tfds: Any, tfds_name: str, data_dir: str | None) -> Any | None:
    """The dataset's tfds builder, or None when even that fails (the original error is reported)."""
    try:
        return tfds.builder(tfds_name, data_dir=data_dir)
    except Exception:  # noqa: BLE001 - only refines the message
        return None


def _is_prepared(builder: Any) -> bool:
    try:
        return bool(builder.is_prepared())
    except Exception:  # noqa: BLE001 - cannot tell: report the original error, not "not prepared"
        return True


def _tfds_versions(root: str, tfds_name: str) -> list[str]:
    """Version directories (e.g. '3.0.1') of a tfds dataset under `root`, sorted."""
    try:
        entries = os.listdir(os.path.join(root, tfds_name))
    except OSError:
        return []
    return sorted(e for e in entries if e[:1].isdigit() and os.path.isdir(os.path.join(root, tfds_name, e)))


def _is_permission_error(error: BaseException) -> bool:
    """Whether `error`, or an exception it was raised from, is an access denial."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, PermissionError) or getattr(error, "errno", None) in (errno.EACCES, errno.EPERM) \
                or type(error).__name__ == "PermissionDeniedError":
            return True
        error = error.__cause__ or error.__context__
    return False


def _first_line(error: BaseException) -> str:
    """'ExceptionType: first line of its message' (one line, for a DataError)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
