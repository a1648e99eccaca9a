"""Synthetic but real media bytes: PNG/JPEG/WebP images, WAV/MP3/PCM audio.

Everything is stdlib + Pillow so the sandbox needs no codecs: the MP3 is a run of valid
MPEG audio frames with zeroed side info (decodes as silence, probes with a real length).
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import wave
from array import array
from functools import lru_cache

from PIL import Image

IMAGE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
IMAGE_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
AUDIO_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "application/octet-stream"}


def seed_of(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


@lru_cache(maxsize=32)
def image_bytes(
    width: int, height: int, fmt: str = "png", seed: int = 0,
    transparent: bool = False, compression: int = 100,
) -> bytes:
    """A two-axis gradient tinted by ``seed``; cached because n images often repeat."""
    base = Image.linear_gradient("L")
    red = base.resize((width, height), Image.Resampling.BILINEAR)
    green = base.transpose(Image.Transpose.ROTATE_90).resize(
        (width, height), Image.Resampling.BILINEAR)
    blue = Image.new("L", (width, height), seed % 256)
    bands = [red, green, blue]
    mode = "RGB"
    if transparent and fmt != "jpeg":
        bands.append(Image.radial_gradient("L").resize((width, height)))
        mode = "RGBA"
    img = Image.merge(mode, bands)
    out = io.BytesIO()
    if fmt == "png":
        img.save(out, "PNG", compress_level=1)  # speed over size: this is a simulator
    elif fmt == "jpeg":
        img.save(out, "JPEG", quality=max(1, min(95, compression)))
    else:
        img.save(out, "WEBP", quality=max(1, min(100, compression)), method=0)
    return out.getvalue()


# --- audio -----------------------------------------------------------------------------

_MELODY = (261.63, 293.66, 329.63, 349.23, 392.00, 440.00, 493.88, 523.25)  # C major


@lru_cache(maxsize=16)
def pcm_bytes(seconds: float = 3.0, sample_rate: int = 44100, channels: int = 2) -> bytes:
    """Signed 16-bit little-endian PCM: an eighth-note C-major scale at half volume."""
    frames = max(1, int(seconds * sample_rate))
    note_len = max(1, sample_rate // 4)
    samples = array("h")
    for i in range(frames):
        freq = _MELODY[(i // note_len) % len(_MELODY)]
        value = int(16000 * math.sin(2 * math.pi * freq * i / sample_rate))
        samples.extend([value] * channels)
    if samples.itemsize == 2 and struct.pack("=h", 1) != struct.pack("<h", 1):
        samples.byteswap()  # big-endian host: WAV/PCM are little-endian
    return samples.tobytes()


def wav_bytes(seconds: float = 3.0, sample_rate: int = 44100, channels: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm_bytes(seconds, sample_rate, channels))
    return out.getvalue()


# MPEG-1 (32/44.1/48 kHz) and MPEG-2 LSF (16/22.05/24 kHz) Layer III tables.
_MPEG1_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MPEG1_RATES = {44100: 0, 48000: 1, 32000: 2}
_MPEG2_RATES = {22050: 0, 24000: 1, 16000: 2}


def mp3_params(sample_rate: int, bitrate: int) -> tuple[int, int]:
    """The (sample_rate, bitrate) an MP3 can actually carry, nearest to the request."""
    if sample_rate not in _MPEG1_RATES and sample_rate not in _MPEG2_RATES:
        sample_rate = 44100
    table = _MPEG1_KBPS if sample_rate in _MPEG1_RATES else _MPEG2_KBPS
    kbps = min(table[1:], key=lambda k: abs(k * 1000 - bitrate))
    return sample_rate, kbps * 1000


def mp3_bytes(seconds: float = 3.0, sample_rate: int = 44100, bitrate: int = 128000) -> bytes:
    """CBR stereo Layer III frames of digital silence (side info all zero)."""
    sample_rate, bitrate = mp3_params(sample_rate, bitrate)
    mpeg1 = sample_rate in _MPEG1_RATES
    kbps_index = (_MPEG1_KBPS if mpeg1 else _MPEG2_KBPS).index(bitrate // 1000)
    rate_index = (_MPEG1_RATES if mpeg1 else _MPEG2_RATES)[sample_rate]
    coef, samples_per_frame = (144, 1152) if mpeg1 else (72, 576)
    base_len, remainder = divmod(coef * bitrate, sample_rate)
    frames = max(1, math.ceil(seconds * sample_rate / samples_per_frame))
    byte1 = 0xFB if mpeg1 else 0xF3  # sync + version + layer III + no CRC
    out = bytearray()
    acc = 0
    for _ in range(frames):
        acc += remainder  # padding slots keep the average bitrate exact
        pad = 1 if acc >= sample_rate else 0
        acc -= sample_rate * pad
        header = bytes((0xFF, byte1, (kbps_index << 4) | (rate_index << 2) | (pad << 1), 0x04))
        out += header + bytes(base_len + pad - 4)
    return bytes(out)


def mp3_seconds(seconds: float, sample_rate: int = 44100) -> float:
    """Exact playing time of ``mp3_bytes(seconds, sample_rate)`` (whole frames)."""
    sample_rate, _ = mp3_params(sample_rate, 128000)
    per_frame = 1152 if sample_rate in _MPEG1_RATES else 576
    return max(1, math.ceil(seconds * sample_rate / per_frame)) * per_frame / sample_rate


def audio_bytes(fmt: str, seconds: float, sample_rate: int, bitrate: int) -> bytes:
    if fmt == "wav":
        return wav_bytes(seconds, sample_rate)
    if fmt == "pcm":
        return pcm_bytes(seconds, sample_rate, 2)
    return mp3_bytes(seconds, sample_rate, bitrate)


def probe_duration(data: bytes) -> float | None:
    """Seconds of an audio blob via mutagen, or None when it is not recognised."""
    try:
        import mutagen  # local import: only cover preprocessing needs it

        info = mutagen.File(io.BytesIO(data))
        return float(info.info.length) if info is not None else None
    except Exception:
        return None
