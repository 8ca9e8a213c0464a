"""The render pipeline against an independent NumPy computation, on real pyramid files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import pyvips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.images import decode_jpeg, expected_region, multiscale_pattern, psnr, window
from tierserve.core.encode import ChromaSubsampling, EncodeAborted, Encoding, encode_jpeg
from tierserve.core.pyramid import PyramidFile
from tierserve.core.render import RenderSpec, render
from tierserve.core.tiers import Window, level_count, max_downsample, plan_read
from tierserve.core.tiles import TileReader
from tierserve.core.windowing import ChannelWindow
from tierserve.errors import RegionOutsideImage, StorageError
from tierserve.ingest.pyramid_writer import write_pyramid
from tierserve.storage import local_file

#: 12-bit data is stored losslessly; only the output JPEG (Q100) and 2x2 rounding per level differ.
PSNR_LOSSLESS_SOURCE = 45.0


@dataclass(frozen=True)
class Stored:
    array: npt.NDArray[np.int64]
    pyramid: PyramidFile

    @property
    def size(self) -> tuple[int, int]:
        return self.array.shape[1], self.array.shape[0]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    directory = tmp_path_factory.mktemp("render")
    array = multiscale_pattern(700, 1100, 3, 4095, seed=11)
    path = directory / "u12.ome.tif"
    write_pyramid(pyvips.Image.new_from_array(array.astype(np.uint16)), path, directory, quality=90)
    return Stored(array, PyramidFile(local_file(path), TileReader()))


def _encode(image: pyvips.Image, quality: int = 100, chroma: ChromaSubsampling = "auto") -> bytes:
    chunks: list[bytes] = []
    encode_jpeg(image, Encoding(quality, chroma), lambda chunk: chunks.append(chunk) is None)
    return b"".join(chunks)


@st.composite
def windows(draw: st.DrawFn, width: int, height: int) -> Window:
    d = draw(st.integers(0, max_downsample(width, height)))
    left = draw(st.integers(0, width - 1))
    top = draw(st.integers(0, height - 1))
    return Window(d, left, top, draw(st.integers(1, 400)), draw(st.integers(1, 300)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_regions_and_tiers_match_numpy(stored: Stored, data: st.DataObject) -> None:
    width, height = stored.size
    request = data.draw(windows(width, height))
    bounds = data.draw(st.sampled_from([[(0, 4095)] * 3, [(0, 923), (0, 987), (0, 4095)], [(500, 900)] * 3]))
    region = expected_region(stored.array, request.downsample, request.left, request.top, request.width, request.height)
    if region.size == 0:  # the tier grid snaps the origin past the last tier pixel
        with pytest.raises(RegionOutsideImage):
            plan_read(width, height, level_count(width, height), request)
        return
    plan = plan_read(width, height, level_count(width, height), request)
    spec = RenderSpec(plan, ChannelWindow((bounds[0], bounds[1], bounds[2])))
    got = decode_jpeg(_encode(render(stored.pyramid, spec)))
    expected = window(region, bounds)
    assert got.shape == expected.shape == (plan.output.height, plan.output.width, 3)
    assert psnr(got, expected) > PSNR_LOSSLESS_SOURCE


def test_a_region_off_by_one_tier_pixel_fails_the_threshold(stored: Stored) -> None:
    """The pixel comparison can fail: the neighbour region is far below the threshold."""
    width, height = stored.size
    request = Window(3, 160, 80, 60, 40)
    plan = plan_read(width, height, level_count(width, height), request)
    got = decode_jpeg(_encode(render(stored.pyramid, RenderSpec(plan, ChannelWindow.full_scale(12)))))
    shifted = window(expected_region(stored.array, 3, 168, 80, 60, 40), [(0, 4095)] * 3)
    assert psnr(got, shifted) < PSNR_LOSSLESS_SOURCE - 10


def test_quality_zero_is_the_lowest_quality_not_the_default(stored: Stored) -> None:
    width, height = stored.size
    plan = plan_read(width, height, level_count(width, height), Window(0, 0, 0, 400, 300))
    image = render(stored.pyramid, RenderSpec(plan, ChannelWindow.full_scale(12)))
    sizes = {q: len(_encode(image, q)) for q in (0, 1, 75)}
    assert sizes[0] == sizes[1] < sizes[75] / 3


def _sampling_factors(jpeg: bytes) -> list[tuple[int, int]]:
    """(horizontal, vertical) sampling factor of each component, read from the baseline SOF0 header."""
    sof = jpeg.index(b"\xff\xc0")
    count = jpeg[sof + 9]
    factors = jpeg[sof + 11 : sof + 10 + 3 * count : 3]
    return [(f >> 4, f & 15) for f in factors]


@pytest.mark.parametrize(
    ("chroma", "quality", "luma_factors"),
    [("auto", 89, (2, 2)), ("auto", 90, (1, 1)), ("auto", 100, (1, 1)), ("420", 90, (2, 2)), ("420", 100, (2, 2))],
)
def test_chroma_subsampling(
    stored: Stored, chroma: ChromaSubsampling, quality: int, luma_factors: tuple[int, int]
) -> None:
    width, height = stored.size
    plan = plan_read(width, height, level_count(width, height), Window(0, 0, 0, 64, 64))
    image = render(stored.pyramid, RenderSpec(plan, ChannelWindow.full_scale(12)))
    assert _sampling_factors(_encode(image, quality, chroma)) == [luma_factors, (1, 1), (1, 1)]


def test_encoder_stops_when_the_sink_refuses(stored: Stored) -> None:
    width, height = stored.size
    plan = plan_read(width, height, level_count(width, height), Window(0, 0, 0, width, height))
    image = render(stored.pyramid, RenderSpec(plan, ChannelWindow.full_scale(12)))
    with pytest.raises(EncodeAborted):
        encode_jpeg(image, Encoding(), lambda chunk: False)


def test_missing_and_corrupt_files_raise_storage_errors(tmp_path: Path, stored: Stored) -> None:
    with pytest.raises(StorageError, match="missing"):
        local_file(tmp_path / "absent.ome.tif")
    corrupt = tmp_path / "corrupt.ome.tif"
    corrupt.write_bytes(Path(str(stored.pyramid.file.local_path)).read_bytes()[:5000])
    with pytest.raises(StorageError):
        plan = plan_read(*stored.size, 2, Window(0, 0, 0, 300, 300))
        _encode(render(PyramidFile(local_file(corrupt), TileReader()), RenderSpec(plan, ChannelWindow.full_scale(12))))
