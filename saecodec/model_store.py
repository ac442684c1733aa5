"""The model store: model files found by identity (SHA-256), name or path, loaded once per process.

Places searched, in order:

1. models shipped inside the package (``saecodec/zoo``),
2. each directory in ``SAECODEC_MODEL_PATH`` (``os.pathsep``-separated),
3. the per-user cache (``SAECODEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/saecodec/models``,
   else ``~/.cache/saecodec/models``), where ``saecodec models add`` copies files,
4. files this process was given by path (in code: ``SAECodec(model=path)``, ``load(path)``).

Stored metadata (a zarr config, cd_values) names a model by identity, or by name, and is
resolved through these places only (:func:`identify_stored`): a path found in a file is
never opened, and a file given by path never takes the name of a model the places hold.

A file is recognised by its content, not its name: any ``*.safetensors`` file in those
places whose metadata says it is a saecodec model takes part. Finding a model reads file
headers only; torch is imported when a network is loaded, which a codec does only for a
chunk that runs it (never for bounded or lossless chunks).
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelMismatchError, ModelNotFoundError, SaecodecError
from .modelfile import HEX_DIGITS, SUFFIX, identity_of_file, is_identity, read_metadata

ZOO_DIR = Path(__file__).parent / "zoo"
# The default: the wavelet family's model, 1.4-1.6x SPERR's ratio at equal error on held-out
# simulated frames and 1.1-1.2x on noisy and real ones, where the conv hyperprior sas-conv-h
# (0.6-0.76x) and the L1 paper's sas64-l1 stay shipped as references (docs/results.md).
DEFAULT_MODEL = "sas-wavelet"
_lock = threading.Lock()
_hash_cache: dict[tuple[str, int, int], str] = {}
_given: dict[str, Path] = {}  # identity -> file this process was given by path
_loaded: dict = {}  # identity -> Model


@dataclass(frozen=True)
class ModelEntry:
    identity: str
    name: str
    family: str
    path: Path
    source: str

    @property
    def short(self) -> str:
        return self.identity[:12]


def user_cache_dir() -> Path:
    if os.environ.get("SAECODEC_CACHE_DIR"):
        return Path(os.environ["SAECODEC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "saecodec" / "models"


def search_dirs() -> list[tuple[str, Path]]:
    dirs = [("package", ZOO_DIR)]
    for p in os.environ.get("SAECODEC_MODEL_PATH", "").split(os.pathsep):
        if p.strip():
            dirs.append(("SAECODEC_MODEL_PATH", Path(p.strip())))
    dirs.append(("user cache", user_cache_dir()))
    return dirs


def _identity(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _lock:
        if key in _hash_cache:
            return _hash_cache[key]
    ident = identity_of_file(path)
    with _lock:
        _hash_cache[key] = ident
    return ident


def _entry(path: Path, source: str) -> ModelEntry | None:
    try:
        meta = read_metadata(path)
        return ModelEntry(_identity(path), meta.get("name", ""), meta.get("family", "?"), path, source)
    except (SaecodecError, OSError):
        return None


def list_models() -> list[ModelEntry]:
    """Every model file in the search places, in search order."""
    out = []
    for source, d in search_dirs():
        if d.is_dir():
            out.extend(e for e in map(lambda p: _entry(p, source), sorted(d.glob("*" + SUFFIX))) if e)
    with _lock:
        given = list(_given.values())
    out.extend(e for e in (_entry(p, "given path") for p in given) if e)
    return out


def _searched() -> str:
    return "; ".join(f"{src}: {d}" + ("" if d.is_dir() else " (missing)") for src, d in search_dirs())


def find(key: str, name: str | None = None) -> ModelEntry:
    """The first model whose identity equals (or, 8+ hex digits, starts with) ``key``,
    or whose name equals ``key``.

    ``name`` is only used to make the error message helpful.
    """
    key = str(key).strip()
    lowered = key.lower()
    by_prefix = len(lowered) >= 8 and set(lowered) <= HEX_DIGITS
    matches = []
    for entry in list_models():
        if entry.identity == lowered or (by_prefix and entry.identity.startswith(lowered)):
            matches.append(entry)
        elif entry.name == key:
            matches.append(entry)
    if any(e.source != "given path" for e in matches):  # a file given by path shadows no installed model
        matches = [e for e in matches if e.source != "given path" or e.identity == lowered]
    exact = [e for e in matches if e.identity == lowered]
    if exact:
        return exact[0]
    if matches:
        idents = {e.identity for e in matches}
        if len(idents) > 1:
            listing = ", ".join(f"{e.name} {e.short} ({e.path})" for e in matches)
            raise SaecodecError(f"model {key!r} is ambiguous: {listing}; give the full identity")
        return matches[0]
    if "/" in key or os.sep in key or key.endswith(SUFFIX):  # a path, not an identity or a name
        raise ModelNotFoundError(f"model file {key} not found: {'a directory' if Path(key).is_dir() else 'no such file'}")
    label = f"model {name!r} " if name else "model "
    raise ModelNotFoundError(
        f"{label}with identity {key} not found. Searched {_searched()}. "
        "Install the model file with `saecodec models add FILE` or put its directory on "
        "SAECODEC_MODEL_PATH."
    )


def verify(entry_or_path, identity: str) -> None:
    """Raise if the file's bytes no longer hash to ``identity``."""
    path = Path(getattr(entry_or_path, "path", entry_or_path))
    actual = identity_of_file(path)
    if actual != identity:
        raise ModelMismatchError(f"model file {path} has identity {actual}, expected {identity}")


def add(path: str | os.PathLike) -> ModelEntry:
    """Copy a model file into the user cache, named ``<name>-<identity[:16]>.safetensors``."""
    path = Path(path)
    meta = read_metadata(path)
    ident = identity_of_file(path)
    dest_dir = user_cache_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in meta.get("name", "model")) or "model"
    dest = dest_dir / f"{safe_name}-{ident[:16]}{SUFFIX}"
    if not dest.exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    return ModelEntry(ident, meta.get("name", ""), meta.get("family", "?"), dest, "user cache")


# -- models in this process ------------------------------------------------------------
def remember(model):
    """Make ``model`` the loaded model of its identity in this process (first one wins);
    freezes it (:meth:`Model.freeze`)."""
    ident = model.freeze()
    with _lock:
        return _loaded.setdefault(ident, model)


def loaded(identity: str):
    """The model already loaded (or remembered) in this process under ``identity``, if any."""
    with _lock:
        return _loaded.get(identity)


def rate_levels(identity: str) -> int | None:
    """How many rate levels the model has (the codec option ``level`` runs 0 .. n - 1), read
    from the loaded network or the file's metadata, without torch; None when it has none or
    the file cannot be found here (a reader finds out at its first chunk)."""
    m = loaded(identity)
    if m is not None:  # the wavelet family's 'levels' are its transform's: it names its rate levels
        return getattr(m.module, "rate_levels", getattr(m.module, "levels", None))
    with _lock:
        path = _given.get(identity)
    try:
        meta = read_metadata(path if path is not None else find(identity).path)
    except SaecodecError:
        return None
    arch = meta.get("architecture") or {}
    if meta.get("family") == "wavelet":
        return arch.get("rate_levels")
    lambdas = arch.get("lambdas")
    return len(lambdas) if meta.get("family") == "conv-hyper" and lambdas else None


def identify(model, name: str | None = None) -> tuple[str, str | None]:
    """(identity, name) of a model given as a :class:`Model`, an identity, an identity
    prefix, a name or a file path, without loading a network. A Model is remembered and a
    file remembered by its path, so that :func:`load` finds them later in this process."""
    if hasattr(model, "freeze"):
        return remember(model).identity, name or model.name
    if not isinstance(model, (str, os.PathLike)):
        raise SaecodecError(f"model must be an identity, name, path or Model, got {type(model).__name__}")
    key = os.fspath(model)
    if is_identity(key.lower()):
        known = loaded(key.lower())
        if name is None and known is None:  # its name travels with the data: readers that lack it name it
            try:
                known = find(key.lower())
            except ModelNotFoundError:
                pass
        return key.lower(), name or (known.name if known else None)
    if Path(key).is_file():
        entry = _entry(Path(key), "given path")
        if entry is None:
            read_metadata(key)  # raises the reason
            raise SaecodecError(f"{key}: not a saecodec model file")
        with _lock:
            _given.setdefault(entry.identity, Path(key).resolve())
        return entry.identity, name or entry.name
    entry = find(key, name=name)
    return entry.identity, name or entry.name


def identify_stored(model, name: str | None = None) -> tuple[str, str | None]:
    """(identity, name) of the model a stored config names: an identity (resolved later, by
    identity, in the search places), or a name or identity prefix found there. Never a
    path: a config comes with the data, from anyone, and must not make a reader open (and
    quote) a file of its choosing; paths are for code (:func:`identify`)."""
    if not isinstance(model, str) or not model.strip():
        raise SaecodecError(f"a stored saecodec config names its model by identity (64 hex digits) or name, "
                            f"got {type(model).__name__}")
    key = model.strip()
    if is_identity(key.lower()):
        return identify(key.lower(), name)
    if "/" in key or os.sep in key or (os.altsep and os.altsep in key) or key.endswith(SUFFIX):
        raise SaecodecError(f"a stored saecodec config names its model by identity or name, not by a file path "
                            f"({key!r}); a model file is given in code (SAECodec(model=path)) or installed with "
                            "`saecodec models add FILE`")
    entry = find(key, name=name)
    return entry.identity, name or entry.name


def load(model: str | os.PathLike, *, name: str | None = None):
    """The network of a model given by file path, identity, identity prefix or name.

    Loaded models are cached by identity; the returned object is shared, so treat it as
    read-only.
    """
    from .models.model import load_file

    key = os.fspath(model)
    if not is_identity(key) and Path(key).is_file():
        path, expected = Path(key), None
    else:
        if (cached := loaded(key)) is not None:
            return cached
        entry = find(key, name=name)
        if (cached := loaded(entry.identity)) is not None:
            return cached
        path, expected = entry.path, entry.identity
    try:
        m = load_file(path)
    except ImportError as e:  # a torch family, without the extra
        raise SaecodecError(f"model {name or key!r} runs its network with torch, which this Python lacks ({e}): "
                            "pip install 'saecodec[learned]'. Bounded and lossless chunks decode without it; "
                            "write them with model=None to need no model at all") from None
    if expected is not None and m.identity != expected:
        raise ModelMismatchError(f"model file {path} changed: identity {m.identity}, expected {expected}")
    return remember(m)
