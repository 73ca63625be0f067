"""Tests for dcjax.data on small fake datasets written to tmp_path (no downloads, no ../shared)."""
import gzip
import io
import os
import struct

import jax
import numpy as np
import pytest

from dcjax import data
from dcjax.errors import ConfigError, DataError

COUNTS = (5, 2, 9)  # unbalanced on purpose


def fake_arrays(counts=COUNTS, shape=(6, 5, 2), n_test=7, seed=0):
    """uint8 NHWC train/test images and labels; train labels shuffled, every class present."""
    rng = np.random.default_rng(seed)
    y_train = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    x_train = rng.integers(0, 256, (len(y_train),) + shape, dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test,) + shape, dtype=np.uint8)
    y_test = rng.integers(0, len(counts), n_test)
    return x_train, y_train, x_test, y_test


def write_npz(path, arrays, drop=None):
    keys = ("x_train", "y_train", "x_test", "y_test")
    np.savez(path, **{k: a for k, a in zip(keys, arrays) if k != drop})
    return str(path)


def idx_bytes(array):
    header = bytes((0, 0, 8, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(directory, arrays, gz=False):
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    os.makedirs(directory, exist_ok=True)
    for name, array in zip(names, arrays):
        raw = idx_bytes(array)
        path = os.path.join(directory, name + (".gz" if gz else ""))
        with open(path, "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)
    return str(directory)


# ----------------------------------------------------------------------------- loading

def test_npz_shapes_dtypes_and_normalisation(tmp_path):
    arrays = fake_arrays()
    ds = data.load("toy", data_dir=write_npz(tmp_path / "toy.npz", arrays))
    x_train, y_train, x_test, y_test = arrays
    assert ds.x_train.shape == (16, 6, 5, 2) and ds.x_train.dtype == np.float32
    assert ds.x_test.shape == (7, 6, 5, 2) and ds.y_test.dtype == np.int32
    assert ds.y_train.dtype == np.int32 and ds.image_shape == (6, 5, 2)
    assert ds.num_classes == 3 and ds.class_names == ("0", "1", "2") and ds.name == "toy"
    unit = x_train / 255.0
    np.testing.assert_allclose(ds.mean, unit.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(ds.std, unit.std(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(ds.x_train, (unit - ds.mean) / ds.std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ds.x_test, (x_test / 255.0 - ds.mean) / ds.std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ds.y_train, y_train)
    back = data.denormalise(ds.x_train, ds.mean, ds.std)
    np.testing.assert_allclose(back, unit, atol=1e-5)
    assert float(data.denormalise(ds.x_train * 100, ds.mean, ds.std).max()) == 1.0


def test_class_index_unbalanced(tmp_path):
    ds = data.load("toy", data_dir=write_npz(tmp_path / "toy.npz", fake_arrays()))
    assert ds.class_index.shape == (3, 9) and ds.class_index.dtype == np.int32
    np.testing.assert_array_equal(ds.class_counts, COUNTS)
    y = np.asarray(ds.y_train)
    for c, count in enumerate(COUNTS):
        row = np.asarray(ds.class_index[c])
        np.testing.assert_array_equal(row[:count], np.flatnonzero(y == c))
        assert (row[count:] == 0).all()


def test_known_name_uses_reference_constants_and_grayscale_nhw(tmp_path):
    x_train, y_train, x_test, y_test = fake_arrays(counts=(3,) * 10, shape=(4, 4, 1))
    arrays = (x_train[..., 0], y_train, x_test[..., 0], y_test)  # NHW
    ds = data.load("FashionMNIST", data_dir=write_npz(tmp_path / "fashion_mnist.npz", arrays))
    assert ds.name == "fashion_mnist" and ds.image_shape == (4, 4, 1)
    assert ds.mean == (0.2861,) and ds.std == (0.3530,)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[-1] == "Ankle boot"
    np.testing.assert_allclose(ds.x_train[..., 0], (x_train[..., 0] / 255 - 0.2861) / 0.3530, atol=1e-5)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_matches_npz(tmp_path, gz):
    arrays = fake_arrays(counts=(4,) * 10, shape=(5, 5, 1))
    plain = (arrays[0][..., 0], arrays[1], arrays[2][..., 0], arrays[3])
    from_idx = data.load("mnist", data_dir=write_idx(tmp_path / "idx", plain, gz=gz))  # auto -> idx
    from_npz = data.load("mnist", data_dir=write_npz(tmp_path / "m.npz", arrays), source="npz")
    assert from_idx.mean == (0.1307,) and from_idx.class_names == tuple("0123456789")
    for field in ("x_train", "y_train", "x_test", "y_test", "class_index", "class_counts"):
        np.testing.assert_array_equal(getattr(from_idx, field), getattr(from_npz, field))


def test_digits_fixed_split():
    a, b = data.load("digits"), data.load("digits", source="sklearn")
    assert a.num_classes == 10 and a.image_shape == (8, 8, 1)
    assert a.x_train.shape[0] == 1347 and a.x_test.shape[0] == 450
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    np.testing.assert_allclose(np.asarray(a.x_train).mean(axis=(0, 1, 2)), 0.0, atol=1e-5)


# ----------------------------------------------------------------------------- sampling

def test_sample_class_indices_properties(tmp_path):
    ds = data.load("toy", data_dir=write_npz(tmp_path / "toy.npz", fake_arrays()))
    y = np.asarray(ds.y_train)
    key = jax.random.key(3)
    idx = data.sample_class_indices(key, ds.class_index, ds.class_counts, 2)
    assert idx.shape == (3, 2) and idx.dtype == np.int32
    for c in range(3):
        assert (y[np.asarray(idx[c])] == c).all() and len(set(np.asarray(idx[c]).tolist())) == 2
    np.testing.assert_array_equal(idx, data.sample_class_indices(key, ds.class_index, ds.class_counts, 2))
    jitted = jax.jit(data.sample_class_indices, static_argnums=3)
    np.testing.assert_array_equal(idx, jitted(key, ds.class_index, ds.class_counts, 2))
    others = [data.sample_class_indices(jax.random.key(s), ds.class_index, ds.class_counts, 2) for s in range(5)]
    assert any(not np.array_equal(idx, o) for o in others)


def test_sample_class_indices_covers_class_and_is_uniform(tmp_path):
    ds = data.load("toy", data_dir=write_npz(tmp_path / "toy.npz", fake_arrays(counts=(5, 5, 9))))
    y = np.asarray(ds.y_train)
    full = np.asarray(data.sample_class_indices(jax.random.key(0), ds.class_index, ds.class_counts, 5))
    for c in range(2):
        assert sorted(full[c]) == sorted(np.flatnonzero(y == c))
    keys = jax.random.split(jax.random.key(1), 3000)
    draws = jax.vmap(lambda k: data.sample_class_indices(k, ds.class_index, ds.class_counts, 2))(keys)
    freq = np.bincount(np.asarray(draws[:, 2]).ravel(), minlength=len(y))[y == 2] / 3000
    np.testing.assert_allclose(freq, 2 / 9, atol=0.04)  # each of the 9 equally likely


def test_sample_real_under_jit(tmp_path):
    ds = data.load("toy", data_dir=write_npz(tmp_path / "toy.npz", fake_arrays()))
    key = jax.random.key(7)
    images = jax.jit(data.sample_real, static_argnums=2)(key, ds, 2)
    assert images.shape == (3, 2, 6, 5, 2)
    idx = data.sample_class_indices(key, ds.class_index, ds.class_counts, 2)
    np.testing.assert_array_equal(images, np.asarray(ds.x_train)[np.asarray(idx)])
    np.testing.assert_array_equal(images, data.sample_real(key, ds, 2))


def test_check_batch_size(tmp_path):
    ds = data.load("toy", data_dir=write_npz(tmp_path / "toy.npz", fake_arrays()))
    data.check_batch_size(ds, 2)
    with pytest.raises(DataError, match=r"config\.bn_batch_per_class=3 .*class 1 .*only 2"):
        data.check_batch_size(ds, 3, field="bn_batch_per_class")
    with pytest.raises(ConfigError) as e:   # init='real' draws ipc distinct images per class
        data.check_batch_size(ds, 3, field="ipc")
    assert one_line(e) == ("config.ipc=3 but toy class 1 (1) has only 2 training images to draw 3 distinct "
                           "ones from; set config.ipc between 1 and 2")
    with pytest.raises(ConfigError, match=r"^config\.ipc must be >= 1, got 0$"):
        data.check_batch_size(ds, 0, field="ipc")


def test_sample_real_rejects_more_than_the_smallest_class(tmp_path):
    ds = data.load("toy", data_dir=write_npz(tmp_path / "toy.npz", fake_arrays()))
    with pytest.raises(ConfigError, match=r"n=3 but toy class 1 \(1\) has only 2 training images"):
        data.sample_real(jax.random.key(0), ds, 3)
    with pytest.raises(ConfigError, match=r"n=10 but no toy class has more than 9 training images"):
        jax.jit(data.sample_real, static_argnums=2)(jax.random.key(0), ds, 10)   # traced counts


# ----------------------------------------------------------------------------- errors

def one_line(excinfo):
    assert "\n" not in str(excinfo.value)
    return str(excinfo.value)


def test_missing_files(tmp_path):
    with pytest.raises(DataError) as e:
        data.load("toy", data_dir=str(tmp_path / "nope.npz"))
    assert "does not exist" in one_line(e)
    with pytest.raises(DataError) as e:
        data.load("toy", data_dir=str(tmp_path), source="npz")
    assert "toy.npz" in one_line(e) and "data_dir" in one_line(e)
    with pytest.raises(DataError, match="IDX"):
        data.load("mnist", data_dir=str(tmp_path), source="idx")
    idx_dir = write_idx(tmp_path / "idx", fake_arrays(counts=(2,) * 10, shape=(3, 3)))
    os.remove(os.path.join(idx_dir, "t10k-labels-idx1-ubyte"))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        data.load("mnist", data_dir=idx_dir)


def test_unknown_names(tmp_path):
    with pytest.raises(DataError) as e:
        data.load("imagenet_tiny")
    assert "cifar10" in one_line(e) and "config.dataset" in one_line(e)
    with pytest.raises(DataError, match="config.data_source"):
        data.load("mnist", source="parquet")
    with pytest.raises(DataError, match="usps.npz"):
        data.load("usps")
    with pytest.raises(DataError, match="digits"):
        data.load("mnist", source="sklearn")


def test_corrupt_idx(tmp_path):
    arrays = fake_arrays(counts=(2,) * 10, shape=(3, 3))
    directory = write_idx(tmp_path / "idx", arrays)
    path = os.path.join(directory, "train-images-idx3-ubyte")
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:-5])  # truncated
    with pytest.raises(DataError, match="truncated") as e:
        data.load("mnist", data_dir=directory)
    one_line(e)
    open(path, "wb").write(b"\x00\x00\x08\x01" + raw[4:])  # wrong ndim in magic
    with pytest.raises(DataError, match="magic"):
        data.load("mnist", data_dir=directory)
    gz_dir = write_idx(tmp_path / "gz", arrays, gz=True)
    gz_path = os.path.join(gz_dir, "train-labels-idx1-ubyte.gz")
    blob = open(gz_path, "rb").read()
    open(gz_path, "wb").write(blob[: len(blob) // 2])  # truncated gzip stream
    with pytest.raises(DataError, match="cannot read IDX"):
        data.load("mnist", data_dir=gz_dir)


def test_bad_npz_and_arrays(tmp_path):
    arrays = fake_arrays()
    with pytest.raises(DataError, match="x_test"):
        data.load("toy", data_dir=write_npz(tmp_path / "toy.npz", arrays, drop="x_test"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="cannot read"):
        data.load("junk", data_dir=str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "obj.npz", x_train=np.array([{"a": 1}], dtype=object), y_train=arrays[1],
             x_test=arrays[2], y_test=arrays[3])
    with pytest.raises(DataError, match="cannot read"):
        data.load("obj", data_dir=str(tmp_path / "obj.npz"))
    x_train, y_train, x_test, y_test = arrays
    gap = np.where(y_train == 1, 3, y_train)  # labels 0, 2, 3: class 1 missing
    with pytest.raises(DataError, match=r"classes \[1\]") as e:
        data.from_arrays("toy", x_train, gap, x_test, y_test)
    one_line(e)
    with pytest.raises(DataError, match="same H, W, C"):
        data.from_arrays("toy", x_train, y_train, x_test[:, :3], y_test)
    with pytest.raises(DataError, match="labels"):
        data.from_arrays("toy", x_train, y_train, x_test, y_test + 3)
    with pytest.raises(DataError, match="4-D"):
        data.from_arrays("toy", x_train[0, 0], y_train, x_test, y_test)
    with pytest.raises(DataError, match="x_train has 16 images"):
        data.from_arrays("toy", x_train, y_train[:-1], x_test, y_test)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        data.from_arrays("toy", x_train * 2.0, y_train, x_test, y_test)


# ----------------------------------------------------------------------------- tensorflow-datasets

def test_tfds_not_prepared_never_downloads(tmp_path):
    with pytest.raises(DataError) as e:
        data.load("mnist", data_dir=str(tmp_path), source="tfds")
    message = one_line(e)
    assert "not prepared" in message and "download_and_prepare" in message
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="not prepared"):  # auto with a directory lacking npz/IDX
        data.load("cifar10", data_dir=str(tmp_path))


@pytest.fixture
def tfds_raising(monkeypatch):
    """Make tfds.data_source raise a given exception (no network, no data): returns a setter."""
    tfds = pytest.importorskip("tensorflow_datasets")

    def make_raise(error, prepared=None):
        def data_source(*args, **kwargs):
            raise error
        monkeypatch.setattr(tfds, "data_source", data_source)
        if prepared is not None:   # a builder that says whether a copy exists, and where
            builder = type("Builder", (), {"data_dir": "/data/mnist/3.0.1", "version": "3.0.1",
                                           "is_prepared": lambda self: prepared})
            monkeypatch.setattr(tfds, "builder", lambda *args, **kwargs: builder())
    return make_raise


def test_tfds_permission_error_is_not_reported_as_not_prepared(tmp_path, tfds_raising):
    tfds_raising(PermissionError(13, "Permission denied", str(tmp_path / "mnist" / "3.0.1")))
    with pytest.raises(DataError) as e:
        data.load("mnist", data_dir=str(tmp_path), source="tfds")
    message = one_line(e)
    assert "not prepared" not in message
    assert "PermissionError: [Errno 13] Permission denied" in message and str(tmp_path) in message
    assert "read access" in message and "mnist.npz" in message


def test_tfds_version_mismatch_names_the_versions(tmp_path, tfds_raising):
    (tmp_path / "mnist" / "1.0.0").mkdir(parents=True)   # prepared by another tensorflow-datasets
    tfds_raising(AssertionError("Dataset mnist cannot be loaded at version 3.0.1, only: 1.0.0"))
    with pytest.raises(DataError) as e:
        data.load("mnist", data_dir=str(tmp_path), source="tfds")
    message = one_line(e)
    assert "not prepared" not in message and "prepared at version(s) 1.0.0" in message
    assert "AssertionError: Dataset mnist cannot be loaded" in message and "download_and_prepare" in message


def test_tfds_damaged_copy_names_the_real_error(tmp_path, tfds_raising):
    tfds_raising(ValueError("Dataset info file format is not set!\nmore detail"), prepared=True)
    with pytest.raises(DataError) as e:
        data.load("mnist", data_dir=str(tmp_path), source="tfds")
    message = one_line(e)
    assert "not prepared" not in message and "/data/mnist/3.0.1" in message
    assert "ValueError: Dataset info file format is not set!" in message and "more detail" not in message
    assert "re-prepare" in message


def test_tfds_missing_copy_keeps_the_prepare_hint(tmp_path, tfds_raising):
    tfds_raising(FileNotFoundError("no dataset_info.json"), prepared=False)
    with pytest.raises(DataError, match="mnist is not prepared in .*download_and_prepare"):
        data.load("mnist", data_dir=str(tmp_path), source="tfds")


def test_tfds_mock_data(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=100):
        ds = data.load("mnist", data_dir=str(tmp_path), source="tfds")
    assert ds.x_train.shape == (100, 28, 28, 1) and ds.x_test.shape == (100, 28, 28, 1)
    assert ds.num_classes == 10 and ds.mean == (0.1307,)


def test_tfds_prepared_array_record(tmp_path):
    """A real (tiny) array_record copy named like MNIST, prepared without TensorFlow."""
    tfds = pytest.importorskip("tensorflow_datasets")
    from PIL import Image
    arrays = fake_arrays(counts=(3,) * 10, shape=(28, 28), n_test=12, seed=1)

    def png(image):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return buffer.getvalue()

    class Mnist(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.builder("mnist").VERSION

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(28, 28, 1)),
                "label": tfds.features.ClassLabel(num_classes=10)}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(*arrays[:2]),
                    "test": self._generate_examples(*arrays[2:])}

        def _generate_examples(self, images, labels):
            for i, (image, label) in enumerate(zip(images, labels)):
                yield i, {"image": png(image), "label": int(label)}

    Mnist(data_dir=str(tmp_path), file_format="array_record").download_and_prepare()
    ds = data.load("mnist", data_dir=str(tmp_path))  # auto -> tfds
    assert ds.x_test.shape == (12, 28, 28, 1) and ds.class_names == tuple("0123456789")
    for x, y, images, labels in ((ds.x_train, ds.y_train, *arrays[:2]), (ds.x_test, ds.y_test, *arrays[2:])):
        pixels = np.round(np.asarray(data.denormalise(x, ds.mean, ds.std))[..., 0] * 255).astype(np.uint8)
        got = sorted((p.tobytes(), int(label)) for p, label in zip(pixels, np.asarray(y)))
        assert got == sorted((p.tobytes(), int(label)) for p, label in zip(images, labels))  # tfds shuffles
