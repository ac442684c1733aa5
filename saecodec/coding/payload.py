"""Payload format: a small fixed header, then the coded sections (docs/format.md).

Version 1 payloads hold only the autoencoder's latents; version 2 adds optional
sections (exact masked pixels, the error-bounded residual, a lossless chunk) and is
written only when one of them is present, so pure-autoencoder payloads keep the v1 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PayloadError

MAGIC = b"SE"
VERSIONS = (1, 2)
MODEL_CHECK_BYTES = 4
MAX_NDIM = 16
# Decoding refuses payloads that claim more elements than this (about 8 GiB of float64),
# so that a corrupted header cannot make the decoder allocate without bound.
MAX_ELEMENTS = 1 << 30

LATENT_SPARSE, LATENT_DENSE = 0, 1  # flag bits 0-1: the latent kind (coding.latents)
FLAG_RESIDUAL = 1 << 2  # v2: the error-bounded residual section follows
FLAG_MASK = 1 << 3  # v2: masked / non-finite pixels are stored exactly
FLAG_FORTRAN = 1 << 4  # the chunk was Fortran-ordered; decode returns it so
FLAG_NO_LATENTS = 1 << 5  # v2: no latent section (the residual does not use the network)
FLAG_RAW = 1 << 6  # v2: the whole chunk is stored losslessly, nothing else follows
V2_FLAGS = FLAG_RESIDUAL | FLAG_MASK | FLAG_NO_LATENTS | FLAG_RAW
_KNOWN_FLAGS = {1: 0b11 | FLAG_FORTRAN, 2: 0b11 | FLAG_FORTRAN | V2_FLAGS}

DTYPES = {1: "<f4", 2: "<f8", 3: "<f2", 4: "|u1", 5: "<u2", 6: "<u4", 7: "<u8",
          8: "|i1", 9: "<i2", 10: "<i4", 11: "<i8"}
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
        return self.take(1)[0]

    def varint(self, limit: int = 1 << 62) -> int:
        value, shift = 0, 0
        while True:
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                raise PayloadError("corrupted payload: varint too long")
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


@dataclass(frozen=True)
class Header:
    flags: int
    model_check: bytes
    dtype: np.dtype
    latent_code: int
    shape: tuple[int, ...]
    tile: tuple[int, int]

    @property
    def latent_kind(self) -> int:
        return self.flags & 0b11

    def pack(self) -> bytearray:
        out = bytearray(MAGIC)
        out.append(2 if self.flags & V2_FLAGS else 1)
        out.append(self.flags)
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
            raise PayloadError(f"payload format version {version} is not supported by this saecodec (supports {VERSIONS})")
        flags = reader.u8()
        if flags & ~_KNOWN_FLAGS[version]:
            raise PayloadError(f"corrupted payload: unknown flags {flags:#04x}")
        check = bytes(reader.take(MODEL_CHECK_BYTES))
        code = reader.u8()
        if code not in DTYPES:
            raise PayloadError(f"corrupted payload: unknown dtype code {code}")
        latent_code = reader.u8()
        ndim = reader.u8()
        if not 2 <= ndim <= MAX_NDIM:
            raise PayloadError(f"corrupted payload: {ndim} dimensions")
        shape = tuple(reader.varint(MAX_ELEMENTS) for _ in range(ndim))
        if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
            raise PayloadError(f"corrupted payload: shape {shape} exceeds the decoder's limit of {MAX_ELEMENTS} elements")
        tile = (reader.varint(1 << 16), reader.varint(1 << 16))
        if min(tile) < 1:
            raise PayloadError(f"corrupted payload: tile shape {tile}")
        return cls(flags, check, np.dtype(DTYPES[code]), latent_code, shape, tile)


def model_check(identity: str) -> bytes:
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
    """Read a zlib block that must inflate to exactly ``expected`` bytes.

    Inflation stops at ``expected + 1`` bytes, so a forged block cannot make the decoder
    allocate more than the header's shape allows.
    """
    import zlib

    data = reader.take(reader.varint(reader.remaining()))
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, expected + 1)
    except zlib.error as e:
        raise PayloadError(f"corrupted payload: {what} does not inflate ({e})") from None
    if len(out) != expected or not d.eof or d.unused_data:
        raise PayloadError(f"corrupted payload: {what} inflates to the wrong size")
    return out


def deflate(data: bytes) -> bytes:
    import zlib

    return zlib.compress(data, 6)
