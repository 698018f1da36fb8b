"""What an audio file's container says about its length, and how much of it the file really holds.

pedalboard reads a file cut short (an interrupted copy or download) as if it
were whole: WAV, AIFF, FLAC and MP3 come back at their header's length with
silence where the audio is missing, and Ogg simply ends early. So the length
a file really holds is worked out here from its bytes: the data chunk against
the file size (WAV, AIFF), the last intact frame (FLAC, MP3), the end-of-stream
page (Ogg). Each costs a few small reads, never a decode.
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass
from typing import BinaryIO, Literal

# A FLAC frame is found from its header back from the end; beyond this window
# (or twice the largest frame STREAMINFO states) no frame header is looked for.
FLAC_TAIL_BYTES = 1 << 16
OGG_MAX_PAGE_BYTES = 27 + 255 + 255 * 255
MP3_DECODER_DELAY_SAMPLES = 529  # what an mpg123-style decoder puts before the first encoded sample


@dataclass(frozen=True)
class Cut:
    """A file that holds less audio than it promises, in frames as its decoder counts them.

    `promised_frames` is the length its header states; None when the format
    states none (Ogg), so only the missing end-of-stream mark tells it was cut.
    """

    held_frames: int
    promised_frames: int | None


def find_cut(path: str, decoder_frames: int) -> Cut | None:
    """How `path` was cut short, given the `decoder_frames` its decoder reports; None if whole (or it cannot tell)."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        magic = file.read(12)
        if magic[:4] in (b"RIFF", b"RF64", b"BW64") and magic[8:12] == b"WAVE":
            held = _wav_frames(file, size)
        elif magic[:4] == b"FORM" and magic[8:12] in (b"AIFF", b"AIFC"):
            held = _aiff_frames(file, size, compressed=magic[8:12] == b"AIFC")
        elif magic[:4] == b"OggS":
            return None if _ogg_ends_whole(file, size) else Cut(decoder_frames, None)
        else:
            audio_start = _after_id3v2(magic)
            file.seek(audio_start)
            if file.read(4) == b"fLaC":
                held = _flac_frames(file, size, audio_start + 4)
            else:
                held = _mp3_frames(file, size)
    if held is None or held >= decoder_frames:
        return None
    return Cut(held, decoder_frames)


def mp3_gapless(path: str) -> tuple[int, int]:
    """(samples to skip at the start, samples to drop at the end) as the LAME tag records them; (0, 0) without one."""
    with open(path, "rb") as file:
        frame = _first_frame(file)
    lame = frame.info + 120
    if frame.info < 0 or frame.data[lame : lame + 4] != b"LAME":
        return 0, 0
    packed = frame.data[lame + 21 : lame + 24]
    delay, padding = packed[0] << 4 | packed[1] >> 4, (packed[1] & 0x0F) << 8 | packed[2]
    return delay + MP3_DECODER_DELAY_SAMPLES, max(padding - MP3_DECODER_DELAY_SAMPLES, 0)


# WAV and AIFF: whole sample frames between the data's start and the file's end.


def _chunks(file: BinaryIO, size: int, byteorder: Literal["little", "big"]):
    """(id, length, offset of its body) of each chunk of a RIFF or IFF file after its 12-byte header."""
    at = 12
    while at + 8 <= size:
        file.seek(at)
        head = file.read(8)
        length = int.from_bytes(head[4:], byteorder)
        yield head[:4], length, at + 8
        at += 8 + length + (length & 1)


def _wav_frames(file: BinaryIO, size: int) -> int | None:
    block_align = None
    for kind, _, body in _chunks(file, size, "little"):
        if kind == b"fmt ":
            block_align = int.from_bytes(file.read(14)[12:14], "little")
        elif kind == b"data":
            # The data chunk's own length may be a placeholder (RF64, streaming writers): the file size is the truth.
            return (size - body) // block_align if block_align else None
    return None


AIFC_SAMPLE_BYTES = {
    b"NONE": None,
    b"twos": None,
    b"sowt": None,
    b"raw ": None,
    b"in24": 3,
    b"in32": 4,
    b"fl32": 4,
    b"FL32": 4,
    b"fl64": 8,
    b"FL64": 8,
    b"ulaw": 1,
    b"alaw": 1,
}


def _aiff_frames(file: BinaryIO, size: int, *, compressed: bool) -> int | None:
    frame_bytes = data_start = None
    for kind, _, body in _chunks(file, size, "big"):
        if kind == b"COMM":
            comm = file.read(22)
            compression = comm[18:22] if compressed else b"NONE"
            if compression not in AIFC_SAMPLE_BYTES:
                return None  # a codec whose frames have no fixed size
            width = AIFC_SAMPLE_BYTES[compression] or (int.from_bytes(comm[6:8], "big") + 7) // 8
            frame_bytes = int.from_bytes(comm[0:2], "big") * width
        elif kind == b"SSND":
            data_start = body + 8 + int.from_bytes(file.read(4), "big")
    if not frame_bytes or data_start is None:
        return None
    return max(size - data_start, 0) // frame_bytes


# FLAC: the last frame whose header and CRC-16 are intact.


def _flac_frames(file: BinaryIO, size: int, at: int) -> int | None:
    info, last = b"", False
    while not last:
        file.seek(at)
        head = file.read(4)
        if len(head) < 4:
            return 0  # the file ends inside its metadata: none of its audio is there
        last, kind, length = bool(head[0] & 0x80), head[0] & 0x7F, int.from_bytes(head[1:4], "big")
        if kind == 0:
            info = file.read(34)
        at += 4 + length
    if len(info) < 34:
        return None
    max_block, max_frame = int.from_bytes(info[2:4], "big"), int.from_bytes(info[7:10], "big")
    total = int.from_bytes(info[13:18], "big") & 0xF_FFFF_FFFF
    end = size - _trailing_tag_bytes(file, size)
    if end <= at:
        return 0
    window = max(FLAC_TAIL_BYTES, 2 * max_frame) if max_frame else 16 * FLAC_TAIL_BYTES
    first = max(at, end - window)
    file.seek(first)
    tail = file.read(end - first)
    frames = [f for f in _flac_headers(tail, max_block) if f[1] <= total]
    if not frames:
        return None
    # The last two headers: a false sync in the final frame's data may pass for the last one. A frame and all
    # that follows it to the end are whole frames exactly when the CRC-16 over them is 0.
    for offset, start, block in frames[-2:]:
        if start + block >= total and _crc16(tail[offset:]) == 0:
            return total
    offset, start, block = frames[-1]
    # The last header begins a frame the file holds only part of, unless the cut fell exactly between frames.
    return start + block if _crc16(tail[offset:]) == 0 else start


FLAC_SYNC = re.compile(rb"\xff[\xf8\xf9]")
FLAC_BLOCK_SIZES = {1: 192, **{n: 576 << (n - 2) for n in range(2, 6)}, **{n: 256 << (n - 8) for n in range(8, 16)}}


def _flac_headers(data: bytes, fixed_block: int) -> list[tuple[int, int, int]]:
    """(offset, first sample, block size) of each frame header in `data` whose CRC-8 holds."""
    found = []
    for sync in FLAC_SYNC.finditer(data):
        header = _flac_header(data, sync.start(), fixed_block)
        if header:
            found.append((sync.start(), *header))
    return found


def _flac_header(data: bytes, at: int, fixed_block: int) -> tuple[int, int] | None:
    if at + 6 > len(data) or data[at + 3] & 0x01 or data[at + 2] >> 4 == 0 or data[at + 2] & 0x0F == 15:
        return None
    number, at_end = _utf8_number(data, at + 4)
    if number is None:
        return None
    code = data[at + 2] >> 4
    if code in (6, 7):
        width = code - 5
        block = int.from_bytes(data[at_end : at_end + width], "big") + 1
        at_end += width
    else:
        block = FLAC_BLOCK_SIZES[code]
    rate_code = data[at + 2] & 0x0F
    at_end += {12: 1, 13: 2, 14: 2}.get(rate_code, 0)
    if at_end >= len(data) or _crc8(data[at:at_end]) != data[at_end]:
        return None
    variable = data[at + 1] & 0x01
    return (number if variable else number * fixed_block), block


def _utf8_number(data: bytes, at: int) -> tuple[int | None, int]:
    """FLAC's frame or sample number: UTF-8-style coding of up to 36 bits, as (number, offset after it)."""
    lead = data[at]  # the caller leaves room for it
    ones = next((n for n in range(8) if not lead & (0x80 >> n)), 8)
    if ones == 1 or ones == 8:
        return None, at
    extra = max(ones - 1, 0)
    number = lead & (0xFF >> (ones + 1))
    for byte in data[at + 1 : at + 1 + extra]:
        if byte & 0xC0 != 0x80:
            return None, at
        number = number << 6 | byte & 0x3F
    return number, at + 1 + extra


def _crc_table(poly: int, width: int) -> list[int]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly if crc & top else crc << 1) & mask
        table.append(crc)
    return table


CRC8_TABLE, CRC16_TABLE = _crc_table(0x07, 8), _crc_table(0x8005, 16)


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = CRC8_TABLE[crc ^ byte]
    return crc


def _crc16(data: bytes) -> int:
    """FLAC's frame CRC; over a whole frame including its stored CRC it is 0."""
    crc = 0
    for byte in data:
        crc = (crc << 8 & 0xFFFF) ^ CRC16_TABLE[crc >> 8 ^ byte]
    return crc


# MP3: whole frames between the Xing/Info frame and the file's end, against the frame count it records.


@dataclass(frozen=True)
class _Frame:
    offset: int  # in the file
    data: bytes  # its first 256 bytes
    info: int  # where "Xing" or "Info" starts in `data`; -1 without

    def xing_field(self, flag: int, index: int) -> int | None:
        """A Xing field present under `flag`: frames (1) and bytes (2) follow the 4-byte flags in that order."""
        flags = int.from_bytes(self.data[self.info + 4 : self.info + 8], "big")
        if not flags & flag:
            return None
        at = self.info + 8 + 4 * index
        return int.from_bytes(self.data[at : at + 4], "big")


def _first_frame(file: BinaryIO) -> _Frame:
    file.seek(0)
    start = _after_id3v2(file.read(10))
    file.seek(start)
    data = file.read(256)
    return _Frame(start, data, max(data.find(b"Xing", 0, 64), data.find(b"Info", 0, 64)))


def _mp3_frames(file: BinaryIO, size: int) -> int | None:
    frame = _first_frame(file)
    length = _mp3_frame_length(frame.data[:4])
    if not length or frame.info < 0 or frame.xing_field(1, 0) is None:
        return None  # no frame count recorded: the decoder's length is an estimate, and nothing was promised
    stream_bytes = frame.xing_field(2, 1)
    if stream_bytes is not None and size - frame.offset >= stream_bytes:
        return None  # as long as the stream it records: whole, no need to walk it
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at, whole = frame.offset + length, 0
        while (length := _mp3_frame_length(data[at : at + 4])) and at + length <= size:
            at, whole = at + length, whole + 1
    # A frame partly there may decode partly right; only whole frames are counted as held.
    return whole * _mp3_samples_per_frame(frame.data)


MP3_KBPS = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 layer III
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}  # MPEG-2 and 2.5
MP3_RATES_HZ = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(head: bytes) -> int | None:
    """Bytes of the MPEG layer III frame whose header `head` starts with; None if it is not one."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0 or (head[1] >> 1) & 3 != 1:
        return None
    version, bitrate, rate = (head[1] >> 3) & 3, head[2] >> 4, (head[2] >> 2) & 3
    if version == 1 or bitrate in (0, 15) or rate == 3:
        return None
    kbps = MP3_KBPS[3 if version == 3 else 2][bitrate]
    per_frame = 144 if version == 3 else 72
    return per_frame * kbps * 1000 // MP3_RATES_HZ[version][rate] + ((head[2] >> 1) & 1)


def _mp3_samples_per_frame(head: bytes) -> int:
    return 1152 if (head[1] >> 3) & 3 == 3 else 576  # MPEG-1 layer III, else MPEG-2 and 2.5


def _after_id3v2(head: bytes) -> int:
    """Where the audio starts after an ID3v2 tag (its size is four 7-bit bytes); 0 without one."""
    if head[:3] != b"ID3":
        return 0
    return 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))


def _trailing_tag_bytes(file: BinaryIO, size: int) -> int:
    """Bytes of the ID3v1 and APEv2 tags some taggers append after the audio."""
    tags = 0
    file.seek(max(size - 128, 0))
    if file.read(3) == b"TAG":
        tags = 128
    file.seek(max(size - tags - 32, 0))
    footer = file.read(32)
    if footer[:8] == b"APETAGEX":
        has_header = int.from_bytes(footer[20:24], "little") & 0x80000000
        tags += int.from_bytes(footer[12:16], "little") + (32 if has_header else 0)
    return tags


# Ogg: the stream's last page carries the end-of-stream mark.


def _ogg_ends_whole(file: BinaryIO, size: int) -> bool:
    first = max(size - OGG_MAX_PAGE_BYTES, 0)
    file.seek(first)
    tail = file.read()
    at = len(tail)
    while (at := tail.rfind(b"OggS", 0, at)) >= 0:
        if at + 27 > len(tail) or tail[at + 4] != 0:
            continue
        segments = tail[at + 27 : at + 27 + tail[at + 26]]
        if len(segments) == tail[at + 26] and at + 27 + len(segments) + sum(segments) <= len(tail):
            return bool(tail[at + 5] & 0x04)  # the last complete page: is it the end of the stream?
    return True  # no complete page in reach: nothing to judge by
