"""Payload format: a small header, the coded sections, a checksum (docs/format.md).

Version 1 payloads hold only the autoencoder's latents; version 2 adds optional
sections (exact masked pixels, the error-bounded residual, a lossless chunk). Both are
still read. Version 3, the only one written, ends with a CRC-32 of everything before it,
checked before anything else is parsed (a corrupted chunk is an error, never wrong
values), and has a second, open-ended flags varint for new sections.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import PayloadError

MAGIC = b"SE"
VERSIONS = (1, 2, 3)
VERSION = 3  # what the encoder writes
CHECKSUM_BYTES = 4  # v3: CRC-32 (zlib's, little-endian) of all bytes before it
MODEL_CHECK_BYTES = 4
MAX_NDIM = 16
# Decoding refuses payloads that claim more elements than this (about 8 GiB of float64),
# so that a corrupted header cannot make the decoder allocate without bound.
MAX_ELEMENTS = 1 << 30

LATENT_SPARSE, LATENT_DENSE, LATENT_HYPER = 0, 1, 2  # flag bits 0-1: the latent kind (coding.latents)
FLAG_RESIDUAL = 1 << 2  # v2: the error-bounded residual section follows
FLAG_MASK = 1 << 3  # v2: masked / non-finite pixels are stored exactly
FLAG_FORTRAN = 1 << 4  # the chunk was Fortran-ordered; decode returns it so
FLAG_NO_LATENTS = 1 << 5  # v2: no latent section (the residual does not use the network)
FLAG_RAW = 1 << 6  # v2: the whole chunk is stored losslessly, nothing else follows
V2_FLAGS = FLAG_RESIDUAL | FLAG_MASK | FLAG_NO_LATENTS | FLAG_RAW
_KNOWN_FLAGS = {1: 0b11 | FLAG_FORTRAN, 2: 0b11 | FLAG_FORTRAN | V2_FLAGS, 3: 0b11 | FLAG_FORTRAN | V2_FLAGS}
# v3 extended flags: a varint after the flags byte, so new sections never run out of bits.
# A bit this saecodec does not know means a newer writer: refused with a clear error.
EXT_GATE = 1 << 0  # the pure mode's quality gate section follows the header (saecodec.gate)
EXT_BIG_ENDIAN = 1 << 1  # the chunk was big-endian; decode returns it so
EXT_RADIAL = 1 << 2  # the wavelet latent section holds a radial prediction block (coding/radial.py)
KNOWN_EXT = EXT_GATE | EXT_BIG_ENDIAN | EXT_RADIAL

# The element types saecodec stores, and their two codes: in the payload header (docs/format.md,
# also HDF5 cd_values) and in the compiled coder's stream (c_fastcode/fc.h FC_*; None: float16,
# which that coder codes as float32).
ELEMENT_TYPES = (("<f4", 1, 0), ("<f8", 2, 1), ("<f2", 3, None), ("|u1", 4, 6), ("<u2", 5, 7), ("<u4", 6, 8),
                 ("<u8", 7, 9), ("|i1", 8, 2), ("<i2", 9, 3), ("<i4", 10, 4), ("<i8", 11, 5))
DTYPES = {code: name for name, code, _ in ELEMENT_TYPES}
_DTYPE_CODES = {np.dtype(v).newbyteorder("<") if np.dtype(v).itemsize > 1 else np.dtype(v): k
                for k, v in DTYPES.items()}


def dtype_code(dtype) -> int | None:
    dt = np.dtype(dtype)
    if dt.itemsize > 1:
        dt = dt.newbyteorder("<")
    return _DTYPE_CODES.get(dt)


def put_varint(out: bytearray, value: int) -> None:
    value = int(value)
    if value < 0:
        raise PayloadError(f"varint must be non-negative, got {value}")
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


class Reader:
    """A cursor over a payload that raises PayloadError instead of reading past its end."""

    def __init__(self, buf):
        self.buf = memoryview(buf).cast("B")
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise PayloadError(f"truncated payload: needed {n} bytes at offset {self.pos}, have {len(self.buf) - self.pos}")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        pos = self.pos
        if pos >= len(self.buf):
            self.take(1)  # raises the truncation error
        self.pos = pos + 1
        return self.buf[pos]

    def varint(self, limit: int = 1 << 62) -> int:
        # indexes the buffer (no slice per byte): for small chunks, headers cost as much as decoding
        buf, pos, end = self.buf, self.pos, len(self.buf)
        value, shift = 0, 0
        while True:
            if pos >= end:
                self.pos = pos
                self.take(1)  # raises the truncation error
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                self.pos = pos
                raise PayloadError("corrupted payload: varint too long")
        self.pos = pos
        if value > limit:
            raise PayloadError(f"corrupted payload: value {value} exceeds {limit}")
        return value

    def array(self, dtype: str, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        return np.frombuffer(self.take(count * dt.itemsize), dtype=dt, count=count)

    def f64(self) -> float:
        return float(self.array("<f8", 1)[0])

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def verify_checksum(self) -> None:
        """Check the trailing CRC-32 over all bytes before it, then stop the reader before it."""
        n = len(self.buf) - CHECKSUM_BYTES
        if n < self.pos:
            raise PayloadError(f"truncated payload: {len(self.buf)} bytes leave no room for its checksum")
        stored = int.from_bytes(self.buf[n:], "little")
        computed = checksum(self.buf[:n])
        if stored != computed:
            raise PayloadError(f"checksum mismatch: stored {stored:#010x}, computed {computed:#010x}; "
                               "the chunk is corrupted")
        self.buf = self.buf[:n]

    def sub(self) -> "Reader":
        """A reader over the next length-prefixed block (:func:`put_block`)."""
        return Reader(self.take(self.varint(self.remaining())))


@dataclass(frozen=True)
class Header:
    flags: int
    model_check: bytes
    dtype: np.dtype
    latent_code: int
    shape: tuple[int, ...]
    tile: tuple[int, int]
    ext: int = 0  # v3 extended flags (EXT_*)
    version: int = VERSION  # the format version read (sections' layouts depend on it); pack writes VERSION

    @property
    def latent_kind(self) -> int:
        return self.flags & 0b11

    def pack(self) -> bytearray:
        """The header of a version 3 payload; :func:`seal` appends the checksum to the whole."""
        out = bytearray(MAGIC)
        out.append(VERSION)
        out.append(self.flags)
        put_varint(out, self.ext)
        out += self.model_check[:MODEL_CHECK_BYTES]
        code = dtype_code(self.dtype)
        if code is None:
            raise PayloadError(f"dtype {self.dtype} cannot be stored")
        out.append(code)
        out.append(self.latent_code)
        out.append(len(self.shape))
        for d in self.shape:
            put_varint(out, d)
        put_varint(out, self.tile[0])
        put_varint(out, self.tile[1])
        return out

    @classmethod
    def unpack(cls, reader: Reader) -> "Header":
        if bytes(reader.take(2)) != MAGIC:
            raise PayloadError("not a saecodec payload (bad magic bytes)")
        version = reader.u8()
        if version not in VERSIONS:
            raise PayloadError(f"payload format version {version} is not supported by this saecodec (supports "
                               f"{VERSIONS}); the chunk is corrupted or was written by a newer saecodec")
        if version >= 3:
            reader.verify_checksum()
        else:
            _refuse_flipped_version(reader, version)
        global _last_header
        start, last = reader.pos - 1, _last_header  # from the version byte: it decides the layout
        if last is not None and reader.buf[start:start + len(last[0])] == last[0]:
            reader.pos = start + len(last[0])  # the same bytes parse to the same header
            return last[1]
        flags = reader.u8()
        if flags & ~_KNOWN_FLAGS[version]:
            raise PayloadError(f"corrupted payload: unknown flags {flags:#04x}")
        ext = reader.varint() if version >= 3 else 0
        if ext & ~KNOWN_EXT:
            raise PayloadError(f"payload uses extended flags {ext & ~KNOWN_EXT:#x} of a newer saecodec; upgrade "
                               "saecodec to read it")
        check = bytes(reader.take(MODEL_CHECK_BYTES))
        code = reader.u8()
        if code not in DTYPES:
            raise PayloadError(f"corrupted payload: unknown dtype code {code}")
        latent_code = reader.u8()
        ndim = reader.u8()
        if not 2 <= ndim <= MAX_NDIM:
            raise PayloadError(f"corrupted payload: {ndim} dimensions")
        shape = tuple(reader.varint(MAX_ELEMENTS) for _ in range(ndim))
        if math.prod(shape) > MAX_ELEMENTS:
            raise PayloadError(f"corrupted payload: shape {shape} exceeds the decoder's limit of {MAX_ELEMENTS} elements")
        tile = (reader.varint(1 << 16), reader.varint(1 << 16))
        if min(tile) < 1:
            raise PayloadError(f"corrupted payload: tile shape {tile}")
        header = cls(flags, check, np.dtype(DTYPES[code]), latent_code, shape, tile, ext, version)
        _last_header = (bytes(reader.buf[start:reader.pos]), header)
        return header


class Expect(NamedTuple):
    """What the container says the chunk is: zarr v3's chunk spec, HDF5's cd_values (written
    by set_local from the dataset), the numcodecs ``out`` buffer. The container knows which
    chunk it asked for; a payload only says what it holds (a chunk of another array or
    dataset, of another type or shape, or one claiming a bomb's shape, carries a valid CRC)."""

    shape: tuple[int, ...] | None = None
    dtype: np.dtype | None = None  # compared by element type (kind and size); byte order is converted
    nbytes: int | None = None  # an untyped buffer: its size only

    def check(self, h: Header) -> None:
        """Refuse a payload that is not this chunk, before anything of it is decoded."""
        if self.dtype is not None and dtype_code(self.dtype) != dtype_code(h.dtype):
            raise PayloadError(f"the payload holds {h.dtype.name} elements, the container's chunk "
                               f"{np.dtype(self.dtype).name}: a chunk of another array, or a damaged file")
        if self.shape is not None and tuple(int(d) for d in self.shape) != h.shape:
            raise PayloadError(f"the payload holds a chunk of shape {h.shape}, the container's chunk is "
                               f"{tuple(self.shape)}: a chunk of another array, or a damaged file")
        if self.nbytes is not None and self.nbytes != math.prod(h.shape) * h.dtype.itemsize:
            raise PayloadError(f"the payload holds a {h.dtype.name} chunk of shape {h.shape}, which does not fill "
                               f"the {self.nbytes} bytes the container gave for it")


# The last header parsed (its bytes from the version byte on) and its parse: a dataset's chunks
# share one header. Compared byte for byte, so it skips work, never a check.
_last_header: tuple[bytes, Header] | None = None


def checksum(data, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def seal(out: bytearray) -> bytes:
    """A complete version 3 payload: ``out`` (header and sections) and its checksum."""
    return bytes(out) + checksum(out).to_bytes(CHECKSUM_BYTES, "little")


def _refuse_flipped_version(reader: Reader, version: int) -> None:
    """A version 3 payload whose version byte was corrupted into 1 or 2 would be parsed
    without its checksum: refuse a v1/v2 payload whose last 4 bytes are exactly the
    checksum it would have as version 3."""
    buf = reader.buf
    if len(buf) < 3 + CHECKSUM_BYTES:
        return
    probe = checksum(buf[3:len(buf) - CHECKSUM_BYTES], checksum(bytes(buf[:2]) + bytes([VERSION])))
    if probe == int.from_bytes(buf[len(buf) - CHECKSUM_BYTES:], "little"):
        raise PayloadError(f"corrupted payload: its format version byte reads {version}, but it is a version "
                           f"{VERSION} payload (its checksum says so); the chunk is corrupted")


@functools.lru_cache(maxsize=64)
def model_check(identity: str | None) -> bytes:
    """The header's model check: the identity's first bytes, zeros for a payload written
    without a model (docs/seams.md, section 1)."""
    if identity is None:
        return bytes(MODEL_CHECK_BYTES)
    return bytes.fromhex(identity)[:MODEL_CHECK_BYTES]


def put_words(out: bytearray, words: np.ndarray) -> None:
    """A range-coded message: its length in 32-bit words, then the words."""
    put_varint(out, len(words))
    out += np.asarray(words, dtype="<u4").tobytes()


def read_words(reader: Reader) -> np.ndarray:
    return reader.array("<u4", reader.varint(reader.remaining() // 4))


def put_side(out: bytearray, side: np.ndarray) -> None:
    """Per frame: the float32 offset and scale of the model's transform."""
    out += np.asarray(side, dtype="<f4").tobytes()


def read_side(reader: Reader, frames: int) -> np.ndarray:
    side = reader.array("<f4", 2 * frames).reshape(frames, 2)
    if not np.isfinite(side).all():
        raise PayloadError("corrupted payload: non-finite frame normalisation")
    return side


def put_block(out: bytearray, data: bytes) -> None:
    """A length-prefixed byte block."""
    put_varint(out, len(data))
    out += data


def inflate(reader: Reader, expected: int, what: str) -> bytes:
    """Read a zlib block that must inflate to exactly ``expected`` bytes (:func:`inflate_exact`)."""
    return inflate_exact(reader.take(reader.varint(reader.remaining())), expected, f"corrupted payload: {what}")


def inflate_exact(data, expected: int, what: str, error=PayloadError) -> bytes:
    """Inflate a zlib block that must give exactly ``expected`` bytes.

    Inflation stops at ``expected + 1`` bytes, so a forged block cannot make the reader
    allocate more than its stated shape allows (zlib reaches ~1000:1).
    """
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, expected + 1)
    except zlib.error as e:
        raise error(f"{what} does not inflate ({e})") from None
    if len(out) != expected or not d.eof or d.unused_data:
        raise error(f"{what} inflates to the wrong size")
    return out


def deflate(data: bytes) -> bytes:
    return zlib.compress(data, 6)
