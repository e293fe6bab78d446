"""Default pass images without Pillow: a tiny PNG writer (zlib + struct) and two simple designs.

Wallet needs ``icon.png`` (29 pt; shown on the lock screen and in notifications) and shows ``logo.png``
(up to 160 × 50 pt) at the top of the pass. A program without an uploaded logo gets a generated one: a stamp
(a ring with a dot) in the program's foreground colour on a transparent background; the icon is the same stamp on
the program's background colour. Each image comes at 1x, 2x and 3x. Results are memoised (they only depend on
colours and sizes), so a pass request never draws.
"""
from __future__ import annotations

import functools
import struct
import zlib

ICON_POINTS = (29, 29)
LOGO_POINTS = (50, 50)  # a square mark; Wallet puts the program name (logoText) next to it
SCALES = ((1, ""), (2, "@2x"), (3, "@3x"))


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
