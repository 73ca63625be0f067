"""Synthetic images as pictures: PNG grids (one class per row, de-normalised, as in the reference)
and PNG folders (one per class) for tools outside dcjax."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from dcjax.support.files import atomic_path


def image_grid(images: np.ndarray, rows: int, min_size: int = 32, pad: int = 2) -> np.ndarray:
    """(N, H, W, C) images in [0, 1] -> one uint8 picture of `rows` rows (nearest-upscaled if tiny)."""
    n, h, w, c = images.shape
    cols = -(-n // rows)
    scale = max(1, -(-min_size // max(h, w)))
    tiles = np.repeat(np.repeat(images, scale, axis=1), scale, axis=2)
    th, tw = h * scale, w * scale
    grid = np.ones((rows * (th + pad) + pad, cols * (tw + pad) + pad, c), np.float32)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[pad + r * (th + pad): pad + r * (th + pad) + th, pad + col * (tw + pad): pad + col * (tw + pad) + tw] = tiles[i]
    grid = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    return grid[..., 0] if c == 1 else grid


def save_grid(path: str, images: np.ndarray, num_classes: int) -> str:
    """Save class-major de-normalised images as a PNG with one class per row; returns the path."""
    with atomic_path(path) as tmp:
        Image.fromarray(image_grid(np.asarray(images), num_classes)).save(tmp)
    return path


def export_png_folder(images: np.ndarray, labels: np.ndarray, class_names: list[str], directory: str) -> str:
    """De-normalised images as `<directory>/<class>/<index>.png` (torchvision ImageFolder layout).

    Written to a temporary sibling directory and renamed into place, so an interrupted export never
    leaves a half-filled folder under the final name. PNG is lossless but 8-bit: pixels are rounded
    to multiples of 1/255 (use the .npz export for the exact float32 values).
    """
    directory = os.path.abspath(directory)
    if os.path.exists(directory):
        raise FileExistsError(f"{directory} exists; choose a new directory for the PNG export")
    pixels = (np.clip(np.asarray(images), 0.0, 1.0) * 255).round().astype(np.uint8)
    width = len(str(len(pixels) - 1))
    with atomic_path(directory) as tmp:
        for index, (image, label) in enumerate(zip(pixels, np.asarray(labels))):
            folder = os.path.join(tmp, f"{int(label):03d}_{class_names[int(label)]}")
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                os.path.join(folder, f"{index:0{width}d}.png"))
    return directory
