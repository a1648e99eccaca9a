"""Media type from the bytes themselves (magic numbers), never from a caller's label.

`sniff(head)` looks at the first few KB of a file and answers a `Sniffed`: the MIME type, the
contract's media_type, and which media types a caller may declare for it (an MP4 or WebM may
hold only audio, so both "audio" and "video" are acceptable there).
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_BYTES = 8192  # enough for every signature below and for the text heuristic


@dataclass(frozen=True)
class Sniffed:
    mime_type: str
    media_type: str
    # media_type values a caller may declare for these bytes ("binary" always fits).
    also: tuple[str, ...] = ()
    # MIME type to use when the caller declares one of `also` (e.g. audio/mp4 for an MP4).
    alt_mime: str | None = None

    def accepts(self, declared: str) -> bool:
        return declared in ("binary", self.media_type, *self.also)

    def as_declared(self, declared: str | None) -> Sniffed:
        """The same bytes labelled with an acceptable declared kind (audio-only MP4 → audio)."""
        if declared and declared in self.also:
            return Sniffed(self.alt_mime or self.mime_type, declared)
        return self


_MP4_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_MP4_QT_BRANDS = {b"qt  "}
# MPEG audio: bitrate (kbps) per index for MPEG-1 layer I/II/III and MPEG-2/2.5 layer I, II/III.
_BITRATES = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_length(h: bytes) -> int | None:
    """Length of the MPEG audio frame whose 4-byte header is `h`, or None if not a header."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version = (h[1] >> 3) & 3  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5, 1 reserved
    layer = (h[1] >> 1) & 3  # 3 = I, 2 = II, 1 = III, 0 reserved
    bitrate_index = h[2] >> 4
    rate_index = (h[2] >> 2) & 3
    if version == 1 or layer == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    table = _BITRATES[(3, layer)] if version == 3 else _BITRATES[(2, 3 if layer == 3 else 2)]
    bitrate = table[bitrate_index] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (h[2] >> 1) & 1
    if layer == 3:  # layer I
        return (12 * bitrate // rate + padding) * 4
    per_frame = 144 if (layer == 2 or version == 3) else 72  # MPEG-2 layer III: 576 samples
    return per_frame * bitrate // rate + padding


def _looks_like_mp3(head: bytes) -> bool:
    """Two consecutive valid MPEG audio frame headers: one 0xFFE sync alone is too weak."""
    first = _mpeg_frame_length(head[:4])
    if not first:
        return False
    if len(head) < first + 4:
        return len(head) >= 4 and len(head) == first  # a single whole frame, nothing after it
    return _mpeg_frame_length(head[first:first + 4]) is not None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the HEAD_BYTES boundary is still text.
        if exc.start < len(head) - 3 or len(head) < HEAD_BYTES:
            return False
        text = head[: exc.start].decode("utf-8")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\b\x1b")
    return controls <= len(text) // 100


def _matroska_doc_type(head: bytes) -> bytes | None:
    # The EBML header names its DocType (element id 0x4282) within the first few dozen bytes.
    at = head.find(b"\x42\x82", 0, 64)
    if at < 0:
        return None
    size_byte = head[at + 2] if len(head) > at + 2 else 0
    if not size_byte & 0x80:
        return None
    size = size_byte & 0x7F
    return head[at + 3: at + 3 + size]


def sniff(head: bytes) -> Sniffed:
    """Classify by content. Unknown bytes are application/octet-stream ("binary")."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image/png", "image")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image/jpeg", "image")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image/webp", "image")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image/gif", "image")
    if head[:2] == b"BM" and len(head) >= 26 and head[14] in (12, 40, 52, 56, 64, 108, 124):
        return Sniffed("image/bmp", "image")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("image/tiff", "image")
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return Sniffed("image/avif", "image")
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1"):
        return Sniffed("image/heic", "image")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio/wav", "audio")
    if head[:4] == b"fLaC":
        return Sniffed("audio/flac", "audio")
    if head[:4] == b"OggS":
        return Sniffed("audio/ogg", "audio", also=("video",), alt_mime="video/ogg")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return Sniffed("audio/aiff", "audio")
    if head[:3] == b"ID3" or _looks_like_mp3(head):
        return Sniffed("audio/mpeg", "audio")
    if len(head) >= 7 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:  # ADTS AAC (layer 0)
        return Sniffed("audio/aac", "audio")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _MP4_AUDIO_BRANDS:
            return Sniffed("audio/mp4", "audio", also=("video",), alt_mime="video/mp4")
        if brand in _MP4_QT_BRANDS:
            return Sniffed("video/quicktime", "video")
        return Sniffed("video/mp4", "video", also=("audio",), alt_mime="audio/mp4")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        if _matroska_doc_type(head) == b"webm":
            return Sniffed("video/webm", "video", also=("audio",), alt_mime="audio/webm")
        return Sniffed("video/x-matroska", "video", also=("audio",), alt_mime="audio/x-matroska")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed("video/x-msvideo", "video")
    if head[:5] == b"%PDF-":
        return Sniffed("application/pdf", "binary")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return Sniffed("application/zip", "binary")
    # Text last: HTML/SVG/JSON are all served as inert text/plain (no script on our origin).
    if _looks_like_text(head.removeprefix(b"\xef\xbb\xbf")):
        return Sniffed("text/plain", "text")
    return Sniffed("application/octet-stream", "binary")
