"""Cut the trailing two dims of a chunk into model-sized frames, and put them back.

Detector frames come in every size; the network takes one. Partial tiles at the
bottom and right edges are padded by repeating the edge pixels (smoother for the
network than zeros) and cropped away again on decode.
"""

from __future__ import annotations

import math

import numpy as np


def whole(shape: tuple[int, ...]) -> tuple[int, int]:
    """The tile of a whole-frame model, and of a payload written without a model: the 2D plane."""
    return max(1, int(shape[-2])), max(1, int(shape[-1]))


def grid(shape: tuple[int, ...], tile: tuple[int, int]) -> tuple[int, int, int]:
    """(number of 2D planes, tiles down, tiles across) for a chunk of ``shape``."""
    planes = int(math.prod(shape[:-2]))
    h, w = shape[-2], shape[-1]
    return planes, math.ceil(h / tile[0]), math.ceil(w / tile[1])


def split(arr: np.ndarray, tile: tuple[int, int]) -> np.ndarray:
    """(..., H, W) -> (B, th, tw) with B = planes * ny * nx."""
    th, tw = tile
    planes, ny, nx = grid(arr.shape, tile)
    if planes * ny * nx == 0:
        return np.zeros((0, th, tw), dtype=arr.dtype)
    h, w = arr.shape[-2:]
    a = arr.reshape(planes, h, w)
    if (ny * th, nx * tw) != (h, w):
        a = np.pad(a, ((0, 0), (0, ny * th - h), (0, nx * tw - w)), mode="edge")
    return a.reshape(planes, ny, th, nx, tw).transpose(0, 1, 3, 2, 4).reshape(-1, th, tw)


def join(tiles: np.ndarray, shape: tuple[int, ...], tile: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`split`: (B, th, tw) -> ``shape``."""
    th, tw = tile
    planes, ny, nx = grid(shape, tile)
    h, w = shape[-2:]
    if planes * ny * nx == 0:
        return np.zeros(shape, dtype=tiles.dtype)
    a = tiles.reshape(planes, ny, nx, th, tw).transpose(0, 1, 3, 2, 4).reshape(planes, ny * th, nx * tw)
    return np.ascontiguousarray(a[:, :h, :w]).reshape(shape)
