"""Pass images: the default designs (drawn without Pillow: a tiny PNG writer, zlib + struct), and uploaded logos,
checked before they are decoded and re-encoded with Pillow to the sizes passes use.

Wallet needs ``icon.png`` (29 pt; shown on the lock screen and in notifications) and shows ``logo.png``
(up to 160 × 50 pt) at the top of the pass. A program without an uploaded logo gets a generated one: a stamp
(a ring with a dot) in the program's foreground colour on a transparent background; the icon is the same stamp on
the program's background colour. Each image comes at 1x, 2x and 3x. Results are memoised (they only depend on
colours and sizes), so a pass request never draws.

An uploaded logo is a PNG whose IHDR chunk (the first one) declares its width and height: that is read before
anything is decoded, and a logo larger than ``MAX_LOGO_SIDE`` on a side is refused, so a few kilobytes declaring
30000 × 30000 pixels never reach a decoder (ours or a phone's). An accepted logo is decoded and stored
re-encoded, fitted in ``STORED_LOGO_SIDE`` (Google Wallet's logo size); Apple passes get it fitted in Wallet's
logo area (160 × 50 pt) at 1x, 2x and 3x.
"""
from __future__ import annotations

import functools
import io
import struct
import zlib

ICON_POINTS = (29, 29)
LOGO_POINTS = (50, 50)  # a square mark; Wallet puts the program name (logoText) next to it
SCALES = ((1, ""), (2, "@2x"), (3, "@3x"))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_LOGO_BYTES = 512 * 1024
MAX_LOGO_SIDE = 3000  # declared pixels on a side; decoding at most 3000² pixels (≤ 72 MB at 16-bit RGBA)
STORED_LOGO_SIDE = 660  # Google Wallet wants a logo of at least 660 × 660; the largest size a pass shows
APPLE_LOGO_POINTS = (160, 50)  # the most Wallet shows of logo.png


class LogoError(ValueError):
    """An upload that is not an acceptable logo: ``reason`` is "not_png", "too_large" or "unreadable"."""

    def __init__(self, reason: str, size: tuple[int, int] | None = None):
        super().__init__(reason)
        self.reason, self.size = reason, size


def png_size(data: bytes | None) -> tuple[int, int] | None:
    """The width and height a PNG declares in its IHDR chunk, read without decoding; None if it is not a PNG."""
    if not data or len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" \
            or struct.unpack(">I", data[8:12])[0] != 13:
        return None
    return struct.unpack(">II", data[16:24])


def safe_logo(data: bytes | None) -> bytes | None:
    """``data`` if it is a PNG of an acceptable declared size, else None (e.g. a logo stored before the check)."""
    size = png_size(bytes(data)) if data else None
    if size is None or not (0 < size[0] <= MAX_LOGO_SIDE and 0 < size[1] <= MAX_LOGO_SIDE):
        return None
    return bytes(data)


def _decode(data: bytes):
    """The logo as an RGBA Pillow image, its declared size checked first."""
    if len(data) > MAX_LOGO_BYTES or png_size(data) is None:
        raise LogoError("not_png")
    if safe_logo(data) is None:
        raise LogoError("too_large", png_size(data))
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if image.size != png_size(data):
                raise LogoError("unreadable")
            image.load()
            return image.convert("RGBA")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, LogoError):
            raise
        raise LogoError("unreadable") from exc


def _encode(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _fitted(image, width: int, height: int):
    """A copy fitted in width × height, aspect kept, never enlarged."""
    from PIL import Image

    copy = image.copy()
    copy.thumbnail((width, height), Image.Resampling.LANCZOS)
    return copy


def normalise_logo(data: bytes) -> bytes:
    """The PNG to store for an uploaded logo: checked (``LogoError``), decoded, fitted in ``STORED_LOGO_SIDE``
    and re-encoded (which also drops whatever else the file carried)."""
    return _encode(_fitted(_decode(data), STORED_LOGO_SIDE, STORED_LOGO_SIDE))


def pass_logos(data: bytes) -> dict[str, bytes] | None:
    """logo.png, logo@2x.png, logo@3x.png from a stored logo, fitted in Wallet's logo area; None if the stored
    bytes are not an acceptable logo (the pass then gets the default one)."""
    try:
        image = _decode(bytes(data))
    except LogoError:
        return None
    width, height = APPLE_LOGO_POINTS
    return {f"logo{suffix}.png": _encode(_fitted(image, width * scale, height * scale)) for scale, suffix in SCALES}


def parse_hex_color(value: str | None, default: tuple[int, int, int] = (31, 78, 121)) -> tuple[int, int, int]:
    """'#1f4e79' → (31, 78, 121); anything malformed → ``default``."""
    if not value or len(value) != 7 or not value.startswith("#"):
        return default
    try:
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
    except ValueError:
        return default


def css_rgb(value: str | None, default: tuple[int, int, int] = (31, 78, 121)) -> str:
    """'#1f4e79' → 'rgb(31,78,121)', the colour syntax pass.json wants."""
    r, g, b = parse_hex_color(value, default)
    return f"rgb({r},{g},{b})"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png_rgba(width: int, height: int, rows: list[bytes]) -> bytes:
    """A truecolour-with-alpha PNG from ``height`` rows of ``width * 4`` bytes (filter 0 on every row)."""
    if len(rows) != height or any(len(r) != width * 4 for r in rows):
        raise ValueError("rows do not match the image size")
    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(
        b"IEND", b"")


def _stamp(size: int, fg: tuple[int, int, int], bg: tuple[int, int, int] | None) -> bytes:
    """A ring with a centre dot, anti-aliased by 4×4 supersampling; ``bg`` None = transparent background."""
    rows = []
    c = (size - 1) / 2
    outer, inner, dot = size * 0.42, size * 0.30, size * 0.16
    n = 4 if size <= 160 else 1  # supersampling only where pixels are big enough to show jaggies
    samples = [((i + 0.5) / n - 0.5) for i in range(n)]
    for y in range(size):
        row = bytearray()
        for x in range(size):
            hits = 0
            for sy in samples:
                for sx in samples:
                    dx, dy = x + sx - c, y + sy - c
                    d = (dx * dx + dy * dy) ** 0.5
                    if inner <= d <= outer or d <= dot:
                        hits += 1
            cover = hits / (n * n)
            if bg is None:
                row += bytes((*fg, round(255 * cover)))
            else:
                row += bytes(round(f * cover + b * (1 - cover)) for f, b in zip(fg, bg)) + b"\xff"
        rows.append(bytes(row))
    return encode_png_rgba(size, size, rows)


@functools.lru_cache(maxsize=64)
def default_icons(background: str, foreground: str) -> dict[str, bytes]:
    """icon.png, icon@2x.png, icon@3x.png: the stamp on the program's background colour."""
    bg, fg = parse_hex_color(background), parse_hex_color(foreground, (255, 255, 255))
    return {f"icon{suffix}.png": _stamp(ICON_POINTS[0] * scale, fg, bg) for scale, suffix in SCALES}


@functools.lru_cache(maxsize=64)
def default_logos(foreground: str) -> dict[str, bytes]:
    """logo.png, logo@2x.png, logo@3x.png: the stamp in the foreground colour, transparent background."""
    fg = parse_hex_color(foreground, (255, 255, 255))
    return {f"logo{suffix}.png": _stamp(LOGO_POINTS[1] * scale, fg, None) for scale, suffix in SCALES}


@functools.lru_cache(maxsize=64)
def google_logo(background: str, foreground: str) -> bytes:
    """A 660 px square program logo for Google Wallet (Google recommends at least 660 × 660)."""
    return _stamp(660, parse_hex_color(foreground, (255, 255, 255)), parse_hex_color(background))
