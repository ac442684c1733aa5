"""Payloads an attacker would write: valid checksums, lying shapes (tests/test_hostile.py and
benchmarks/hostile_files.py).

Each one starts from a payload saecodec wrote and rewrites its header (and, for the
bounded modes' stream, the stream's own plane count and size) before sealing it again with
a fresh CRC-32: what reaches the decoder is well formed and claims what the attacker wants.
"""

from __future__ import annotations

import numpy as np

from saecodec.coding import payload as fmt


def _split(payload: bytes) -> tuple[fmt.Header, bytes, bytes]:
    """(header, its bytes, the sections after it) of a version 3 payload."""
    r = fmt.Reader(payload)
    h = fmt.Header.unpack(r)
    return h, bytes(payload[:r.pos]), bytes(r.buf[r.pos:])


def _varint(v: int) -> bytes:
    out = bytearray()
    fmt.put_varint(out, v)
    return bytes(out)


def _skip_varint(buf: bytes, pos: int) -> int:
    while buf[pos] & 0x80:
        pos += 1
    return pos + 1


def reshape(payload: bytes, shape, tile=None) -> bytes:
    """The payload claiming ``shape`` (and ``tile``, default the old one: a whole-frame model's
    is the new plane); a bounded stream's own P, H, W follow, so the stream stays valid."""
    h, _, body = _split(payload)
    shape = tuple(int(d) for d in shape)
    tile = h.tile if tile is None else tile
    new = fmt.Header(h.flags, h.model_check, h.dtype, h.latent_code, shape, tuple(tile), h.ext).pack()
    if h.flags & fmt.FLAG_RESIDUAL and not h.flags & fmt.FLAG_MASK and h.flags & fmt.FLAG_NO_LATENTS:
        body = _restream(body, shape)
    return fmt.seal(new + body)


def _restream(body: bytes, shape) -> bytes:
    """A residual section (kind 0, one stream) with the stream's P, H, W set to ``shape``'s."""
    assert body[0] == 0, "a direct stream section"
    r = fmt.Reader(body)
    r.u8()
    n = r.varint()
    stream = bytes(r.take(n))
    pos = 5
    end = _skip_varint(stream, _skip_varint(stream, _skip_varint(stream, pos)))
    p = int(np.prod(shape[:-2], dtype=np.int64))
    stream = stream[:pos] + _varint(p) + _varint(shape[-2]) + _varint(shape[-1]) + stream[end:]
    return b"\0" + _varint(len(stream)) + stream


def retype(payload: bytes, dtype) -> bytes:
    """The payload's element type code changed to ``dtype``'s (the sections unchanged)."""
    h, _, body = _split(payload)
    new = fmt.Header(h.flags, h.model_check, np.dtype(dtype), h.latent_code, h.shape, h.tile, h.ext).pack()
    return fmt.seal(new + body)


def stream_bomb(codec_cls, model: str | None, shape, dtype="u2") -> bytes:
    """A lossless constant chunk of ``shape`` (any size: its symbols cost no bits), written
    for a 16 x 16 chunk and reshaped: a ~60-byte payload that decodes to ``shape``. ``model``
    None: the model-free codec's, whose tile is the plane."""
    small = codec_cls(model, error_bound=0).encode(np.zeros((1, 16, 16), dtype))
    return reshape(small, shape, tile=None if model is not None else tuple(shape[-2:]))
