"""Procedural section images built lazily with libvips, so even 16000 x 10000 ones stream to disk.

Tissue outlines are drawn at low resolution with NumPy and smoothly enlarged; texture comes from
libvips Perlin noise at cell, layer and region scales, which compresses like a real slide.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyvips

_LOW_RES = 256


def _lowres_grid(width: int, height: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    lw = _LOW_RES
    lh = max(2, round(_LOW_RES * height / width))
    ys, xs = np.mgrid[0:lh, 0:lw]
    return xs / (lw - 1) * 2 - 1, ys / (lh - 1) * 2 - 1


def _enlarge(low: npt.NDArray[np.float64], width: int, height: int) -> pyvips.Image:
    """A low-resolution float field resized smoothly to exactly width x height."""
    image = pyvips.Image.new_from_array(np.ascontiguousarray(low, dtype=np.float32))
    image = image.resize(width / image.width * 1.01, vscale=height / image.height * 1.01, kernel="linear")
    return image.crop(0, 0, width, height)


def tissue_mask(width: int, height: int, seed: int) -> pyvips.Image:
    """A float 0-1 mask of a brain-section-like outline (a cerebrum and a smaller lobe), soft edges."""
    rng = np.random.default_rng(seed)
    x, y = _lowres_grid(width, height)
    cx, cy = rng.uniform(-0.1, 0.1, 2)
    angle = np.arctan2(y - cy, x - cx)
    wobble = 1 + 0.06 * np.sin(3 * angle + rng.uniform(0, 6)) + 0.04 * np.sin(7 * angle + rng.uniform(0, 6))
    cerebrum = ((x - cx + 0.1) / 0.72) ** 2 + ((y - cy) / 0.78) ** 2
    lobe = ((x - cx - 0.62) / 0.3) ** 2 + ((y - cy - 0.35) / 0.4) ** 2
    inside = np.minimum(cerebrum, lobe) / wobble
    low = np.clip((1.0 - inside) * 12, 0, 1)
    return _enlarge(low, width, height)


def _where(condition: pyvips.Image, inside: float, outside: float) -> pyvips.Image:
    """A float image: `inside` where `condition` (0/255) holds, `outside` elsewhere."""
    return condition.linear((inside - outside) / 255.0, outside)


def _perlin(width: int, height: int, cell: int, seed: int) -> pyvips.Image:
    """Perlin noise scaled to roughly 0-1."""
    return pyvips.Image.perlin(width, height, cell_size=max(2, cell), seed=seed).linear(0.5, 0.5)


def ish_section(
    width: int, height: int, seed: int, section: tuple[int, int, int, int] | None = None
) -> tuple[pyvips.Image, pyvips.Image]:
    """An ISH-like RGB slide (light background, tan tissue, dark purple expressing cells) and its
    expression mask (black background, expressing cells coloured from blue to red by intensity).

    With `section` (x, y, width, height), the tissue lies inside that rectangle of the scan only.
    """
    if section is None:
        mask = tissue_mask(width, height, seed)
    else:
        x, y, w, h = section
        mask = tissue_mask(w, h, seed).embed(x, y, width, height, extend="black")
    cells = _perlin(width, height, 6, seed + 1)
    layers = _perlin(width, height, 160, seed + 2)
    spots = _perlin(width, height, 14, seed + 3) > 0.62
    expression = _where(spots, 1.0, 0.0) * _where(layers > 0.45, 1.0, 0.25) * mask * cells
    density = mask * (layers * 0.35 + cells * 0.25 + 0.4)
    slide = (density * [-30, -48, -62] + [241, 239, 236]) + expression * [-130, -150, -95]
    expression_mask = _heat(expression * (layers * 0.6 + 0.4))
    return slide.cast("uchar").copy(interpretation="srgb"), expression_mask


def _heat(value: pyvips.Image) -> pyvips.Image:
    """Map 0-1 to a blue-green-yellow-red heat scale; exactly 0 stays black."""
    ramp = np.linspace(0, 1, 256)
    table = np.stack(
        [
            np.clip(2 * ramp - 0.6, 0, 1),
            np.clip(1.6 - np.abs(ramp - 0.55) * 3, 0, 1),
            np.clip(1 - 2 * ramp, 0, 1),
        ],
        axis=-1,
    )
    table = (table * 255).astype(np.uint8)
    table[0] = 0
    lut = pyvips.Image.new_from_memory(table.tobytes(), 256, 1, 3, "uchar")
    index = (value * 255).cast("uchar")
    return index.maplut(lut).copy(interpretation="srgb")


def fluorescence_section(width: int, height: int, seed: int) -> tuple[pyvips.Image, pyvips.Image]:
    """A 3-channel 12-bit connectivity-like image (red: autofluorescence, green: labelled axons and an
    injection site, blue: near empty), values 0-4095 in 16-bit samples; and its 8-bit projection layer."""
    rng = np.random.default_rng(seed)
    mask = tissue_mask(width, height, seed)
    regions = _perlin(width, height, 200, seed + 1)
    grain = _perlin(width, height, 5, seed + 2)
    x, y = _lowres_grid(width, height)
    ix, iy = rng.uniform(-0.4, 0.3, 2)
    injection = _enlarge(np.exp(-((x - ix) ** 2 + (y - iy) ** 2) / 0.01), width, height)
    fibres = (_perlin(width, height, 96, seed + 3) - 0.5).abs() < 0.015
    axons = _where(fibres, 1.0, 0.0) * _where(regions > 0.55, 0.7, 0.12) * mask
    green = (injection * 4095 + axons * 2600 + grain * 120 * mask + 30).clamp(min=0, max=4095).cast("ushort")
    red = (mask * (regions * 500 + 250) + grain * 90 + 20).cast("ushort")
    blue = (grain * 40 + 8).cast("ushort")
    image = red.bandjoin([green, blue]).copy(interpretation="rgb16")
    signal = _where(green > 900, 1.0, 0.0) * (green.cast("float") / 4095)
    projection = (signal * [255, 255, 255]).cast("uchar").copy(interpretation="srgb")
    return image, projection


def nissl_plate(width: int, height: int, seed: int) -> pyvips.Image:
    """A Nissl-stained atlas plate: blue-violet tissue with dense cell texture on white."""
    mask = tissue_mask(width, height, seed)
    cells = _perlin(width, height, 4, seed + 1)
    layers = _perlin(width, height, 120, seed + 2)
    density = mask * (cells * 0.4 + layers * 0.3 + 0.3)
    return (density * [-120, -130, -60] + [245, 245, 248]).cast("uchar").copy(interpretation="srgb")


def annotation_plate(width: int, height: int, seed: int, structures: int) -> pyvips.Image:
    """Coloured structure regions (a Voronoi partition of the tissue) with dark boundaries on white."""
    rng = np.random.default_rng(seed)
    factor = 8
    lw, lh = max(2, width // factor), max(2, height // factor)
    ys, xs = np.mgrid[0:lh, 0:lw]
    seeds = rng.uniform([0, 0], [lw, lh], size=(structures, 2))
    nearest = np.zeros((lh, lw), dtype=np.int32)
    best = np.full((lh, lw), np.inf)
    for index, (sx, sy) in enumerate(seeds):
        distance = (xs - sx) ** 2 + (ys - sy) ** 2
        closer = distance < best
        nearest[closer], best[closer] = index + 1, distance[closer]
    inside = np.asarray(tissue_mask(lw, lh, seed).numpy()) > 0.5
    label = np.where(inside, nearest, 0)
    edge = np.zeros_like(inside)
    edge[:, 1:] |= label[:, 1:] != label[:, :-1]
    edge[1:, :] |= label[1:, :] != label[:-1, :]
    palette = rng.integers(60, 250, size=(structures + 1, 3)).astype(np.uint8)
    palette[0] = 255
    rgb = palette[label]
    rgb[edge] = 40
    low = pyvips.Image.new_from_array(np.ascontiguousarray(rgb)).copy(interpretation="srgb")
    big = low.zoom(factor, factor)
    return big.embed(0, 0, width, height, extend="copy")
