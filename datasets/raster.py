"""Pictures to the prepared form: longest side `size`, aspect ratio kept, transparent parts on white."""

from __future__ import annotations

import io
from pathlib import Path

from jointspace.datasets.items import ImageSource
from PIL import Image

from jointspace.atomic_write import atomic_path
from jointspace.images import fit_longer_side as fit
from jointspace.images import on_white


def render_svg(data: bytes, size: int) -> Image.Image:
    """Rasterise an SVG with cairosvg so its longest side is `size`; raises on SVGs cairosvg refuses."""
    import cairosvg

    # cairosvg scales the other side in proportion when only one output side is given.
    png = cairosvg.svg2png(bytestring=data, output_width=size, unsafe=False)
    image = Image.open(io.BytesIO(png))
    if image.height > size:
        png = cairosvg.svg2png(bytestring=data, output_height=size, unsafe=False)
        image = Image.open(io.BytesIO(png))
    image.load()
    return image


def load(source: ImageSource, size: int) -> Image.Image:
    """The prepared RGB picture for a source: rendered or decoded, fitted, on white."""
    if source.kind == "svg":
        image = render_svg(source.read(), size)
    else:
        image = Image.open(
            source.path if source.data is None and source.path is not None else io.BytesIO(source.read())
        )
        image.load()
    if source.rotate_cw % 360:
        image = image.rotate(-source.rotate_cw, expand=True)  # PIL turns counter-clockwise
    return fit(on_white(image), size)


def save(image: Image.Image, path: Path) -> None:
    """PNG or JPEG by suffix, written to a temporary name first so a killed run leaves no half file."""
    with atomic_path(path) as partial:
        if path.suffix.lower() in (".jpg", ".jpeg"):
            image.save(partial, format="JPEG", quality=90, optimize=True)
        else:
            image.save(partial, format="PNG", optimize=True)
