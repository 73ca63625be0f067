"""PNG grids of synthetic images: one class per row, de-normalised, as in the reference."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image


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
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    Image.fromarray(image_grid(np.asarray(images), num_classes)).save(tmp)
    os.replace(tmp, path)
    return path
