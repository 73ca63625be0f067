"""PNG grids a user looks at: enlarged tiles, class names, ipc 1 as one row of classes."""
import numpy as np
from PIL import Image

from dcjax.support.pictures import image_grid, save_grid

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def grid_size(tmp_path, images, num_classes, **kwargs):
    path = save_grid(str(tmp_path / "grid.png"), images, num_classes, **kwargs)
    with Image.open(path) as picture:
        return picture.size, picture.mode


def images(n, side=32, channels=3):
    return np.random.default_rng(0).random((n, side, side, channels), np.float32)


def test_ipc1_set_is_one_row_of_enlarged_classes(tmp_path):
    (width, height), mode = grid_size(tmp_path, images(10), 10)
    assert width >= 600 and 64 <= height < 2 * 64 and mode == "RGB"   # one row of >= 64 px tiles


def test_ipc3_set_has_three_columns_and_a_row_per_class(tmp_path):
    (width, height), _ = grid_size(tmp_path, images(30), 10)
    tile = width // 3
    assert 64 <= tile and height // 10 == tile   # 3 columns x 10 rows of square tiles (+ 2 px gaps)


def test_class_names_are_written_beside_rows_and_under_ipc1_tiles(tmp_path):
    plain, _ = grid_size(tmp_path, images(30), 10)
    named, _ = grid_size(tmp_path, images(30), 10, class_names=CIFAR10)
    assert named[1] == plain[1] and named[0] > plain[0] + 40   # a label column on the left
    plain, _ = grid_size(tmp_path, images(10), 10)
    named, _ = grid_size(tmp_path, images(10), 10, class_names=CIFAR10)
    assert named[0] == plain[0] and named[1] > plain[1] + 8    # captions under the one row


def test_grey_sets_stay_grey_and_many_classes_wrap(tmp_path):
    (width, height), mode = grid_size(tmp_path, images(100, side=8, channels=1), 100,
                                      class_names=[f"c{i}" for i in range(100)])
    assert mode == "L" and 900 <= width < 1100 and height >= 10 * 96   # rows of 10 classes


def test_wide_sets_are_not_enlarged_past_the_width_limit(tmp_path):
    (width, _), _ = grid_size(tmp_path, images(500), 10, class_names=CIFAR10)   # ipc 50
    assert width <= 2400


def test_image_grid_is_the_bare_tiles():
    grid = image_grid(np.zeros((6, 4, 4, 3), np.float32), rows=3, min_size=4, pad=1)
    assert grid.shape == (3 * 5 + 1, 2 * 5 + 1, 3) and grid.dtype == np.uint8
    assert image_grid(np.ones((2, 4, 4, 1)), rows=1, min_size=8, pad=0).shape == (8, 16)
