"""Display filters (contrast, rgb, colormap) and lossless outputs, checked exactly on PNG/TIFF
against NumPy computations of the documented formulas."""

from __future__ import annotations

import io

import httpx2
import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.conftest import EQUALIZATION, Collection
from tests.images import decode_jpeg, expected_region, psnr, window
from tierserve.core.palettes import palette_table

REGION = "left=100&top=50&width=300&height=200"


def png(http: httpx2.Client, url: str) -> np.ndarray:
    response = http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.mode == "RGB"
    return np.asarray(image).astype(np.int64)


def fluorescence_region(collection: Collection, downsample: int = 0) -> np.ndarray:
    return expected_region(collection.fluorescence, downsample, 100, 50, 300, 200)


def contrast(values: np.ndarray, gain: float, bias: float) -> np.ndarray:
    return np.floor(np.clip(gain * values / 255 + bias, 0, 1) * 255 + 0.5)


def weights(values: np.ndarray, rgb: tuple[float, float, float]) -> np.ndarray:
    return np.floor(values / 255 * np.array(rgb) * 255 + 0.5)


def colormap(intensity: np.ndarray, gain: float, threshold: float, low: float, high: float, palette: int) -> np.ndarray:
    t = np.clip((intensity - low) / (high - low), 0, 1)
    colour = palette_table(palette)[np.floor(t * 255 + 0.5).astype(int)].astype(float)
    mixed = gain * colour + (1 - gain) * (255 * t)[..., None]
    mixed[t < threshold] = 0
    return np.floor(mixed + 0.5)


def test_png_is_the_exact_windowed_image(http: httpx2.Client, collection: Collection) -> None:
    response = http.get(f"/api/v2/section_image_download/2101?format=png&{REGION}")
    assert response.headers["content-disposition"] == "inline; filename=2101.png"
    got = png(http, f"/api/v2/section_image_download/2101?format=png&{REGION}")
    assert (got == window(fluorescence_region(collection), EQUALIZATION)).all()


def test_tiff_keeps_native_12_bit_samples(http: httpx2.Client, collection: Collection) -> None:
    response = http.get(f"/api/v2/section_image_download/2101?format=tiff&{REGION}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/tiff"
    assert response.headers["content-disposition"] == "inline; filename=2101.tif"
    got = tifffile.imread(io.BytesIO(response.content))
    assert got.dtype == np.uint16 and got.shape == (200, 300, 3)
    assert (got == fluorescence_region(collection)).all()
    tier = tifffile.imread(io.BytesIO(http.get("/api/v2/section_image_download/2101?format=tif&downsample=2").content))
    difference = tier - expected_region(collection.fluorescence, 2, 0, 0, 325, 225)
    assert np.abs(difference).max() <= 0.5  # exact block means, rounded once
    assert abs(difference.mean()) < 0.05  # no rounding bias accumulated over levels


def test_tiff_with_range_is_windowed_to_8_bit(http: httpx2.Client, collection: Collection) -> None:
    bounds = [(100, 3000), (0, 4095), (50, 500)]
    flat = ",".join(str(v) for pair in bounds for v in pair)
    got = tifffile.imread(
        io.BytesIO(http.get(f"/api/v2/image_download/2101?format=tiff&range={flat}&{REGION}").content)
    )
    assert got.dtype == np.uint8
    assert (got == window(fluorescence_region(collection), bounds)).all()


def test_contrast_after_windowing(http: httpx2.Client, collection: Collection) -> None:
    got = png(http, f"/api/v2/section_image_download/2101?format=png&contrast=0.5,0.25&{REGION}")
    assert (got == contrast(window(fluorescence_region(collection), EQUALIZATION), 0.5, 0.25)).all()


def test_rgb_weights_after_contrast_with_range_and_downsample(http: httpx2.Client, collection: Collection) -> None:
    bounds = [(0, 2000), (0, 3000), (0, 4095)]
    flat = ",".join(str(v) for pair in bounds for v in pair)
    got = png(
        http,
        f"/api/v2/section_image_download/2101?format=png&downsample=1&range={flat}"
        f"&contrast=1.5,-0.1&rgb=0.25,0.5,1&{REGION}",
    )
    windowed = window(fluorescence_region(collection, 1), bounds)
    expected = weights(contrast(windowed, 1.5, -0.1), (0.25, 0.5, 1.0))
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 2  # stored tiers are rounded 2x2 means


def test_colormap_reads_the_signal_channel_of_fluorescence(http: httpx2.Client, collection: Collection) -> None:
    got = png(http, f"/api/v2/projection_image_download/2101?format=png&colormap=0.5,0.2,0,256,4&{REGION}")
    green = window(fluorescence_region(collection), EQUALIZATION)[..., 1]
    assert (got == colormap(green, 0.5, 0.2, 0, 256, 4)).all()


@pytest.mark.parametrize("palette", ["hotmetal", "1", "jet"])
def test_colormap_of_rgb_uses_luma(http: httpx2.Client, palette: str) -> None:
    plain = png(http, f"/api/v2/section_image_download/2001?format=png&{REGION}")
    luma = np.floor(plain @ np.array([0.299, 0.587, 0.114]) + 0.5)
    got = png(http, f"/api/v2/section_image_download/2001?format=png&colormap={palette}&{REGION}")
    pid = {"hotmetal": 1, "1": 1, "jet": 2}[palette]
    assert np.abs(got - palette_table(pid)[luma.astype(int)]).max() <= 1


def test_order_is_contrast_then_rgb_then_colormap(http: httpx2.Client) -> None:
    plain = png(http, f"/api/v2/section_image_download/2001?format=png&{REGION}")
    got = png(
        http,
        f"/api/v2/section_image_download/2001?format=png&contrast=0.8,0.1&rgb=1,0.5,0.5"
        f"&colormap=1,0,0,255,gray&{REGION}",
    )
    filtered = weights(contrast(plain.astype(float), 0.8, 0.1), (1, 0.5, 0.5))
    luma = np.floor(filtered @ np.array([0.299, 0.587, 0.114]) + 0.5)
    assert np.abs(got[..., 0] - luma).max() <= 1
    assert (got[..., 0] == got[..., 1]).all()


@pytest.mark.parametrize(
    "query",
    ["colormap=0.5,0.9,0,256,4&view=expression", "rgb=0.25,0.5,1", "contrast=0.5,1", "colormap=expression"],
)
def test_allensdk_query_strings_render_jpeg(http: httpx2.Client, query: str) -> None:
    plain = png(http, f"/api/v2/section_image_download/2001?format=png&downsample=1&{query}")
    response = http.get(f"/api/v2/section_image_download/2001?downsample=1&{query}")
    assert response.headers["content-type"] == "image/jpeg"
    assert psnr(decode_jpeg(response.content), plain.astype(float)) > 30


def test_allensdk_rgb_and_contrast_values(http: httpx2.Client, collection: Collection) -> None:
    got = png(http, f"/api/v2/section_image_download/2101?format=png&rgb=0.25,0.5,1&contrast=0.5,1&{REGION}")
    windowed = window(fluorescence_region(collection), EQUALIZATION)
    assert (got == weights(contrast(windowed, 0.5, 1.0), (0.25, 0.5, 1.0))).all()
    assert (got[..., 2] == 255).all()  # bias 1 saturates before the blue weight 1
