from __future__ import annotations

from jointspace.datasets import raster
from jointspace.datasets.items import ImageSource
from PIL import Image

WIDE_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="200" height="100" viewBox="0 0 200 100">
<rect x="50" y="25" width="100" height="50" fill="#ff0000"/></svg>"""
TALL_SVG = WIDE_SVG.replace(
    b'width="200" height="100" viewBox="0 0 200 100"', b'width="60" height="240" viewBox="0 0 60 240"'
)


def test_wide_svg_keeps_its_aspect_ratio_on_white() -> None:
    image = raster.load(ImageSource("svg", data=WIDE_SVG), 256)
    assert image.mode == "RGB"
    assert image.size == (256, 128)
    assert image.getpixel((2, 2)) == (255, 255, 255)  # transparent corner → white
    red, green, blue = image.getpixel((128, 64))
    assert red > 240 and green < 15 and blue < 15


def test_tall_svg_is_fitted_by_its_height() -> None:
    image = raster.load(ImageSource("svg", data=TALL_SVG), 128)
    assert image.size == (32, 128)


def test_rgba_png_goes_on_white_and_shrinks(tmp_path) -> None:
    source = Image.new("RGBA", (400, 300), (0, 0, 255, 0))
    source.paste((0, 0, 255, 255), (100, 100, 300, 200))
    path = tmp_path / "stamp.png"
    source.save(path)
    image = raster.load(ImageSource("raster", path=path), 100)
    assert image.size == (100, 75)
    assert image.getpixel((1, 1)) == (255, 255, 255)
    assert image.getpixel((50, 37))[2] > 240 and image.getpixel((50, 37))[0] < 15


def test_small_picture_is_scaled_up_to_the_size() -> None:
    assert raster.fit(Image.new("RGB", (20, 10)), 64).size == (64, 32)


def test_save_writes_jpeg_or_png_by_suffix(tmp_path) -> None:
    image = Image.new("RGB", (10, 10), (255, 255, 255))
    raster.save(image, tmp_path / "a.jpg")
    raster.save(image, tmp_path / "b.png")
    assert Image.open(tmp_path / "a.jpg").format == "JPEG"
    assert Image.open(tmp_path / "b.png").format == "PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "b.png"]  # no .part left behind
