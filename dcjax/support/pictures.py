"""Synthetic images as pictures: labelled PNG grids to look at, and PNG folders (one per class) for
tools outside dcjax.

A grid is what a user looks at first (`images/final.png`), so it is made readable at a glance:
tiles are enlarged with nearest-neighbour upscaling (a 32x32 image becomes 96x96, an 8x8 one
96x96), class names are written next to their images, and an ipc-1 set is laid out as one row of
classes (rows of at most 10) with each name under its image instead of a 1-image-wide column.
With more images per class, each class is one row with its name in a column on the left.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dcjax.support.files import atomic_path

TILE_SIDE = 96          # tiles are upscaled (by a whole factor) to at least this many pixels a side
MAX_WIDTH = 2400        # ... unless the picture would get wider than this (e.g. 50 images per class)
ROW_OF_CLASSES = 10     # an ipc-1 set: up to this many classes per row, names under the tiles
FONT_SIZE = 13          # of Pillow's bundled default font (no font files are looked up or fetched)
PAD = 2                 # white pixels between tiles
MARGIN = 4              # white pixels around a text
_BACKGROUND, _INK = "white", "black"


def image_grid(images: np.ndarray, rows: int, min_size: int = 32, pad: int = PAD) -> np.ndarray:
    """(N, H, W, C) images in [0, 1] -> one uint8 picture of `rows` rows, without text
    (nearest-upscaled to at least `min_size` pixels a side); (H', W') for grey images."""
    images = np.asarray(images)
    cols = -(-len(images) // rows)
    scale = max(1, -(-min_size // max(images.shape[1:3])))
    return np.asarray(_place(_tiles(images, scale), rows, cols, pad))


def save_grid(path: str, images: np.ndarray, num_classes: int, *,
              class_names: Sequence[str] | None = None) -> str:
    """Save class-major de-normalised images (N, H, W, C in [0, 1]) as a labelled PNG grid (see the
    module docstring); returns the path."""
    picture = labelled_grid(np.asarray(images), num_classes, class_names)
    with atomic_path(path) as tmp:
        picture.save(tmp)
    return path


def labelled_grid(images: np.ndarray, num_classes: int, class_names: Sequence[str] | None = None) -> Image.Image:
    """The picture `save_grid` writes: enlarged tiles, one row of classes for ipc 1 (names below),
    else one row per class (names on the left). Without class names there is no text."""
    n, height, width = images.shape[:3]
    ipc = n // num_classes if n % num_classes == 0 else 0
    names = [str(name) for name in class_names] if class_names is not None and ipc else None
    if names is not None and len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for {num_classes} classes")
    font = _font()
    row_of_classes = ipc == 1
    cols = min(num_classes, ROW_OF_CLASSES) if row_of_classes else -(-n // num_classes)
    rows = -(-n // cols)
    text_height = _text_size(font, "Ag")[1] + 2 * MARGIN
    left = below = 0
    if names and row_of_classes:
        below = text_height
    elif names:
        left = min(max(_text_size(font, name)[0] for name in names), 4 * TILE_SIDE) + 2 * MARGIN
    scale = _scale(max(height, width), cols, width, left)
    tile_h, tile_w = height * scale, width * scale
    picture = _place(_tiles(images, scale), rows, cols, PAD, left=left, below=below)
    draw = ImageDraw.Draw(picture)
    for index, name in enumerate(names or []):
        if row_of_classes:   # centred under the class's image
            row, col = divmod(index, cols)
            x, y = _tile_origin(row, col, tile_h, tile_w, PAD, left, below)
            text = _fit(font, name, tile_w - MARGIN)
            draw.text((x + (tile_w - _text_size(font, text)[0]) // 2, y + tile_h + MARGIN), text, fill=_INK,
                      font=font)
        else:                # left of the class's row, vertically centred
            _, y = _tile_origin(index, 0, tile_h, tile_w, PAD, left, below)
            text = _fit(font, name, left - 2 * MARGIN)
            draw.text((MARGIN, y + (tile_h - text_height) // 2 + MARGIN), text, fill=_INK, font=font)
    return picture


def _scale(side: int, cols: int, width: int, left: int) -> int:
    """Whole upscaling factor: tiles of at least TILE_SIDE pixels, within MAX_WIDTH when possible."""
    scale = max(1, math.ceil(TILE_SIDE / side))
    while scale > 1 and left + cols * (width * scale + PAD) + PAD > MAX_WIDTH:
        scale -= 1
    return scale


def _tiles(images: np.ndarray, scale: int) -> np.ndarray:
    """uint8 (N, H*scale, W*scale, 1 or 3) tiles; other channel counts are shown as their grey mean."""
    if images.shape[-1] not in (1, 3):
        images = images.mean(axis=-1, keepdims=True)
    pixels = (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.repeat(np.repeat(pixels, scale, axis=1), scale, axis=2)


def _tile_origin(row: int, col: int, tile_h: int, tile_w: int, pad: int, left: int, below: int) -> tuple[int, int]:
    """(x, y) of the top-left pixel of the tile at (row, col)."""
    return left + pad + col * (tile_w + pad), pad + row * (tile_h + below + pad)


def _place(tiles: np.ndarray, rows: int, cols: int, pad: int, left: int = 0, below: int = 0) -> Image.Image:
    """Tiles row by row on a white picture, with `left` pixels for row names and `below` under each
    row of tiles for captions. Grey ('L') for 1-channel tiles, else RGB."""
    _, tile_h, tile_w, channels = tiles.shape
    mode = "L" if channels == 1 else "RGB"
    size = (left + cols * (tile_w + pad) + pad, rows * (tile_h + below + pad) + pad)
    picture = Image.new(mode, size, _BACKGROUND)
    for index, tile in enumerate(tiles):
        origin = _tile_origin(*divmod(index, cols), tile_h, tile_w, pad, left, below)
        picture.paste(Image.fromarray(tile[..., 0] if mode == "L" else tile, mode), origin)
    return picture


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled default font at FONT_SIZE (Pillow >= 10.1), else its small bitmap font."""
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:   # older Pillow: load_default() takes no size
        return ImageFont.load_default()


def _text_size(font: ImageFont.ImageFont | ImageFont.FreeTypeFont, text: str) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return right - left, bottom - top


def _fit(font: ImageFont.ImageFont | ImageFont.FreeTypeFont, text: str, width: int) -> str:
    """`text`, shortened with a trailing '.' until it fits in `width` pixels."""
    if _text_size(font, text)[0] <= width:
        return text
    while len(text) > 1 and _text_size(font, text + ".")[0] > width:
        text = text[:-1]
    return text + "."


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
