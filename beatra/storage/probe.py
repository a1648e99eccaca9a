"""Dimensions of images (Pillow) and durations of audio/video (mutagen, an mp4 box reader).

Images: the declared size is checked first, so a decompression bomb is refused before a single
pixel is inflated; then the image is decoded in full, so a truncated file is refused rather than
stored with the size its header claims. Audio: the duration is bounded by what the bytes can
hold at the stream's bitrate, and a file whose data is far shorter than its header says is
refused (a WAV cut to 2,000 bytes must not pass as 10 s).
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import mutagen
from PIL import Image, UnidentifiedImageError

# 80 megapixels (e.g. 10000x8000): far above any model's input, far below Pillow's bomb limit.
MAX_IMAGE_PIXELS = 80_000_000


class ProbeError(ValueError):
    """The bytes carry a known signature but cannot be read as that kind of media."""


@dataclass(frozen=True)
class Probe:
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


def probe_image(path: Path) -> Probe:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:  # reads the header only
                width, height = img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ProbeError(f"image is larger than {MAX_IMAGE_PIXELS} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ProbeError(f"image could not be read ({exc.__class__.__name__})") from None
    if width <= 0 or height <= 0:
        raise ProbeError("image has no pixels")
    if width * height > MAX_IMAGE_PIXELS:
        raise ProbeError(f"image is {width}x{height}; at most {MAX_IMAGE_PIXELS} pixels")
    _decode_fully(path)
    return Probe(width=width, height=height)


def _decode_fully(path: Path) -> None:
    try:
        with Image.open(path) as img:
            img.verify()  # chunk structure and checksums (PNG): catches a cut-off end
        with Image.open(path) as img:
            img.load()  # every pixel: catches truncated or corrupt image data
    except (OSError, SyntaxError, ValueError) as exc:
        raise ProbeError(f"image data is truncated or corrupt ({exc})") from None


def _boxes(f: BinaryIO, start: int, end: int):
    """(type, payload offset, payload end) of the ISO-BMFF boxes in [start, end)."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        header = f.read(16)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header[:8])
        offset = 8
        if size == 1:  # 64-bit size follows
            if len(header) < 16:
                return
            size = struct.unpack(">Q", header[8:16])[0]
            offset = 16
        elif size == 0:  # runs to the end of the file
            size = end - pos
        if size < offset:
            return
        yield kind, pos + offset, min(pos + size, end)
        pos += size


def mp4_duration_ms(path: Path) -> int | None:
    """Movie duration from moov/mvhd (works for video-only files mutagen will not read)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        end = f.tell()
        for kind, start, stop in _boxes(f, 0, end):
            if kind != b"moov":
                continue
            for child, cstart, _cstop in _boxes(f, start, stop):
                if child != b"mvhd":
                    continue
                f.seek(cstart)
                body = f.read(32)
                if len(body) < 20:
                    return None
                if body[0] == 1:  # version 1: 64-bit times
                    if len(body) < 32:
                        return None
                    timescale, duration = struct.unpack(">IQ", body[20:32])
                else:
                    timescale, duration = struct.unpack(">II", body[12:20])
                if not timescale or duration in (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
                    return None
                return duration * 1000 // timescale
    return None


def probe_av(path: Path, mime_type: str) -> Probe:
    """duration_ms for audio and video; None where no reader knows the container."""
    if mime_type in ("video/mp4", "audio/mp4", "video/quicktime"):
        return Probe(duration_ms=mp4_duration_ms(path))
    if mime_type.endswith(("/webm", "/x-matroska", "/x-msvideo")):
        return Probe()  # mutagen has no Matroska/AVI reader; the file is still accepted
    try:
        parsed = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise ProbeError(f"audio could not be read ({exc.__class__.__name__})") from None
    length = getattr(getattr(parsed, "info", None), "length", None)
    if parsed is None or not length or length <= 0:
        raise ProbeError("audio could not be read (no stream info)")
    return Probe(duration_ms=round(_bounded_length(path, mime_type, parsed.info, length) * 1000))


# Containers whose header bitrate is exact (PCM) or whose frames carry it (MP3): size x 8 /
# bitrate is then what the file can really play. Other codecs state a nominal bitrate only.
_SIZE_BOUNDED = ("audio/wav", "audio/x-wav", "audio/wave", "audio/aiff", "audio/x-aiff",
                 "audio/mpeg")
# Slack for headers, tags and VBR averaging before a short file counts as lying.
_SHORT_RATIO = 1.5
_SHORT_SLACK_SECONDS = 1.0


def _bounded_length(path: Path, mime_type: str, info: object, length: float) -> float:
    bitrate = getattr(info, "bitrate", 0) or 0
    if mime_type not in _SIZE_BOUNDED or bitrate <= 0:
        return length
    by_size = path.stat().st_size * 8 / bitrate
    if length > by_size * _SHORT_RATIO + _SHORT_SLACK_SECONDS:
        raise ProbeError(f"audio header claims {length:.2f} s but the data holds about "
                         f"{by_size:.2f} s; the file is truncated")
    return min(length, by_size)


def probe(path: Path, media_type: str, mime_type: str) -> Probe:
    if mime_type == "image/heic":
        return Probe()  # Pillow has no HEIF reader; accepted without dimensions
    if media_type == "image":
        return probe_image(path)
    if media_type in ("audio", "video"):
        return probe_av(path, mime_type)
    return Probe()
