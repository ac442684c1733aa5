"""The model file format: safetensors weights plus one canonical JSON metadata string.

A model's identity is the SHA-256 of its file. Reading a file's metadata and identity
needs no torch: the model store finds files, and the HDF5 helper packs cd_values, without
loading a network. Writing a file is :meth:`saecodec.models.Model.save`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct

from .errors import SaecodecError

FILE_FORMAT = "saecodec-model"
FILE_FORMAT_VERSION = 1
METADATA_KEY = "saecodec"
SUFFIX = ".safetensors"
# A safetensors header larger than this is not one of ours (guards reading random files).
_MAX_HEADER = 16 * 1024 * 1024
HEX_DIGITS = frozenset("0123456789abcdef")


def is_identity(text) -> bool:
    """A full model identity: 64 lowercase hex digits."""
    return isinstance(text, str) and len(text) == 64 and set(text) <= HEX_DIGITS


def canonical_json(meta: dict) -> str:
    """Sorted keys, no spaces: the same metadata always gives the same bytes (and identity)."""
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)


def identity_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def identity_of_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_metadata(path: str | os.PathLike) -> dict:
    """The model's JSON metadata, reading only the file's header.

    Errors never quote the file's bytes (not even its length field as a number): a model
    store may be pointed at any readable file, and its content is nobody's business."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise SaecodecError(f"{path}: not a saecodec model file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER:
            raise SaecodecError(f"{path}: not a saecodec model file (no safetensors header)")
        raw = f.read(n)
    return parse_header(raw, path)


def metadata_of_bytes(data: bytes, path=None) -> dict:
    """The metadata of a whole model file held in memory."""
    if len(data) < 8:
        raise SaecodecError(f"{path}: not a saecodec model file (too short)")
    (n,) = struct.unpack("<Q", data[:8])
    return parse_header(data[8:8 + n], path)


def parse_header(raw: bytes, path) -> dict:
    try:
        header = json.loads(raw)
        meta = json.loads(header["__metadata__"][METADATA_KEY])
    except (ValueError, KeyError, TypeError):  # their messages may quote the file's bytes
        raise SaecodecError(f"{path}: not a saecodec model file (no saecodec metadata)") from None
    if not isinstance(meta, dict) or meta.get("format") != FILE_FORMAT:
        raise SaecodecError(f"{path}: not a saecodec model file")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise SaecodecError(f"{path}: not a saecodec model file (its format version is no integer)")
    if version > FILE_FORMAT_VERSION:
        raise SaecodecError(
            f"{path}: model file format version {version} is newer than this "
            f"saecodec supports ({FILE_FORMAT_VERSION}); upgrade saecodec"
        )
    return meta
