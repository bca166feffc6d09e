"""The brand kit: the logo, fonts, colours, tone and banned words of a brand.

A YAML file; paths are relative to it::

    name: Northwind Goods
    logo: logo.png                          # optional, PNG/JPEG/WebP (drawn with its alpha)
    headline_font: fonts/LiberationSans-Bold.ttf   # optional: the bundled Liberation Sans
    body_font: fonts/LiberationSans-Regular.ttf
    colours:                                # "#RRGGBB", quoted (# starts a YAML comment)
      primary: "#1F3A5F"                    # the first text colour tried
      accent: "#E07A2E"                     # the CTA button
    tone: [warm, honest, outdoorsy]         # words the copy writers lean on
    banned: [cheap, discount]               # never in any copy (whole words, any case)

Everything is checked when the file is loaded — fonts are opened with Pillow, the logo is
decoded — so a bad kit fails before any image is rendered. ``text_style`` hands the layout
step (``pipelines.overlay``) what it draws with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..assets import assets_dir
from ..errors import StudioError
from ..files import read_yaml
from .guidelines import Guidelines

_KEYS = {"name", "logo", "headline_font", "body_font", "colours", "tone", "banned"}
_REQUIRED = ("name", "colours")
#: The fonts of a kit that names none: the free family bundled with the example kit.
DEFAULT_FONTS = {"headline_font": "fonts/LiberationSans-Bold.ttf",
                 "body_font": "fonts/LiberationSans-Regular.ttf"}
_HEX = re.compile(r"#([0-9a-fA-F]{6})")
RGB = tuple[int, int, int]
_WHITE: RGB = (255, 255, 255)
_BLACK: RGB = (0, 0, 0)


@dataclass(frozen=True)
class BrandKit:
    name: str
    logo: Path | None
    headline_font: Path
    body_font: Path
    colours: dict[str, RGB] = field(hash=False)
    tone: tuple[str, ...] = ()
    banned: tuple[str, ...] = ()

    @classmethod
    def load(cls, path) -> "BrandKit":
        """Read and check a brand kit file (see the module docstring for its keys)."""
        path = Path(path)
        where = f"brand kit {str(path)!r}"
        data = read_yaml(path, "brand kit")
        if not isinstance(data, dict):
            raise StudioError(f"{where} must be a mapping of {', '.join(sorted(_KEYS))}")
        unknown = set(data) - _KEYS
        if unknown:
            raise StudioError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))} "
                              f"(known: {', '.join(sorted(_KEYS))})")
        missing = [key for key in _REQUIRED if data.get(key) in (None, "")]
        if missing:
            raise StudioError(f"{where} lacks {', '.join(missing)}")
        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            raise StudioError(f"{where}: name must be text")
        folder = path.parent
        logo = data.get("logo")
        kit = cls(
            name=name.strip(),
            logo=_file(folder, logo, "logo", where) if logo is not None else None,
            headline_font=_font_file(folder, data, "headline_font", where),
            body_font=_font_file(folder, data, "body_font", where),
            colours=_colours(data["colours"], where),
            tone=_words(data.get("tone", []), "tone", where),
            banned=_words(data.get("banned", []), "banned", where),
        )
        for font in (kit.headline_font, kit.body_font):
            _check_font(font, where)
        if kit.logo is not None:
            _read_logo(kit.logo, where)
        return kit

    @classmethod
    def default(cls) -> "BrandKit":
        """The example kit bundled with the studio (``assets/brand/kit.yaml``)."""
        return cls.load(assets_dir() / "brand" / "kit.yaml")

    def text_style(self):
        """The fonts and colours for ``pipelines.overlay.compose_copy``: text colours are
        the primary colour, the kit's other colours but the accent, then white and black
        (so a plain background never needs a scrim); the logo is loaded as RGBA."""
        from pipelines.overlay import TextStyle

        candidates = [self.colours["primary"]]
        candidates += [c for k, c in self.colours.items() if k not in ("primary", "accent")]
        candidates += [_WHITE, _BLACK]
        unique = tuple(dict.fromkeys(candidates))
        logo = _read_logo(self.logo, f"brand kit {self.name!r}") if self.logo else None
        return TextStyle(self.headline_font, self.body_font, unique, self.colours["accent"], logo)

    def check_copy(self, text: str) -> None:
        """Refuse ``text`` when it holds one of the kit's banned words or phrases (whole
        words, any case — the rule brand guidelines apply to prompts)."""
        problems = Guidelines(banned_words=self.banned).violations(text)
        if problems:
            raise StudioError(f"copy {text!r} {problems[0]} of brand {self.name!r}")

    def as_dict(self) -> dict:
        return {"name": self.name, "logo": str(self.logo) if self.logo else None,
                "headline_font": str(self.headline_font), "body_font": str(self.body_font),
                "colours": {k: "#{:02X}{:02X}{:02X}".format(*c) for k, c in self.colours.items()},
                "tone": list(self.tone), "banned": list(self.banned)}


def _font_file(folder: Path, data: dict, key: str, where: str) -> Path:
    """The kit's font ``key``, or the bundled one when the kit names none."""
    if data.get(key) in (None, ""):
        return assets_dir() / "brand" / DEFAULT_FONTS[key]
    return _file(folder, data[key], key, where)


def _file(folder: Path, value, key: str, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise StudioError(f"{where}: {key} must be a file path")
    path = (folder / value).resolve()
    if not path.is_file():
        raise StudioError(f"{where}: {key} {str(path)!r} does not exist")
    return path


def _colours(value, where: str) -> dict[str, RGB]:
    if not isinstance(value, dict):
        raise StudioError(f"{where}: colours must be a mapping of names to \"#RRGGBB\"")
    missing = [k for k in ("primary", "accent") if k not in value]
    if missing:
        raise StudioError(f"{where}: colours lack {', '.join(missing)}")
    colours = {}
    for key, hex_value in value.items():
        match = _HEX.fullmatch(hex_value) if isinstance(hex_value, str) else None
        if not match:
            raise StudioError(f"{where}: colour {key} is {hex_value!r}; write \"#RRGGBB\" "
                              "in quotes (an unquoted # starts a YAML comment)")
        digits = match.group(1)
        colours[str(key)] = tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4))
    return colours


def _words(value, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise StudioError(f"{where}: {key} must be a list of words")
    return tuple(v.strip() for v in value)


def _check_font(path: Path, where: str) -> None:
    from PIL import ImageFont

    try:
        ImageFont.truetype(str(path), 12)
    except OSError as exc:
        raise StudioError(f"{where}: font {str(path)!r} cannot be opened ({exc}); "
                          "give a TrueType or OpenType file") from None


def _read_logo(path: Path, where: str) -> np.ndarray:
    from pipelines.errors import InputError
    from pipelines.product import read_image

    try:
        image, _ = read_image(path, what="logo")
    except InputError as exc:
        raise StudioError(f"{where}: {exc}") from None
    return np.asarray(image.convert("RGBA"))
