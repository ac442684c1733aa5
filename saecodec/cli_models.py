"""``saecodec models list / add / show / derive``: the model files a reader can find."""

from __future__ import annotations

import json
from pathlib import Path


def cmd_list(args) -> int:
    from . import model_store

    entries = model_store.list_models()
    if not entries:
        print("no models found; searched:")
        for src, d in model_store.search_dirs():
            print(f"  {src}: {d}")
        return 0
    print(f"{'identity':14} {'name':24} {'family':6} source / path")
    for e in entries:
        print(f"{e.short:14} {e.name:24} {e.family:6} {e.source}: {e.path}")
    return 0


def cmd_add(args) -> int:
    from . import model_store

    entry = model_store.add(args.file)
    print(f"added {entry.name!r} ({entry.identity}) to {entry.path}")
    return 0


def cmd_show(args) -> int:
    from . import model_store
    from .modelfile import read_metadata

    entry = model_store.find(args.id)
    meta = read_metadata(entry.path)
    meta = {"identity": entry.identity, "path": str(entry.path), "source": entry.source, **meta}
    print(json.dumps(meta, indent=2, sort_keys=True))
    return 0


def cmd_derive(args) -> int:
    from . import model_store

    model = model_store.load(args.model).for_log10_input(args.name)
    save_model(model, args.output, not args.no_register, f"{args.model} reading log10 intensities")
    return 0


def save_model(model, output: str | None, register: bool, what: str = "") -> Path:
    """Write a new model's file (default NAME.safetensors) and, when ``register``, copy it
    into the user cache where every reader finds it (``train`` and ``derive``)."""
    from . import model_store

    out = Path(output or f"{model.name}.safetensors")
    ident = model.save(out)
    print(f"model {model.name!r} ({ident}) -> {out}" + (f": {what}" if what else ""))
    if register:
        print(f"registered in {model_store.add(out).path}")
    return out


def register(sub) -> None:
    models = sub.add_parser("models", help="list, add, inspect and derive model files")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="models found in the package, SAECODEC_MODEL_PATH and the user cache"
                    ).set_defaults(func=cmd_list)
    a = msub.add_parser("add", help="copy a model file into the user cache")
    a.add_argument("file")
    a.set_defaults(func=cmd_add)
    s = msub.add_parser("show", help="print a model's metadata (by identity, prefix or name)")
    s.add_argument("id")
    s.set_defaults(func=cmd_show)
    d = msub.add_parser("derive", help="write a variant of a model that reads another input domain")
    d.add_argument("model", help="model name, identity or file")
    d.add_argument("--input", required=True, choices=["log10"],
                   help="log10: the arrays hold log10 intensities (the same network, identity transform)")
    d.add_argument("--name", default=None, help="name of the new model (default MODEL-log10)")
    d.add_argument("-o", "--output", default=None, help="model file (default NAME.safetensors)")
    d.add_argument("--no-register", action="store_true", help="do not copy the model into the user cache")
    d.set_defaults(func=cmd_derive)
