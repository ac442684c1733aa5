"""The ``saecodec`` command line."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import SaecodecError


def _cmd_models_list(args) -> int:
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


def _cmd_models_add(args) -> int:
    from . import model_store

    entry = model_store.add(args.file)
    print(f"added {entry.name!r} ({entry.identity}) to {entry.path}")
    return 0


def _cmd_models_show(args) -> int:
    from . import model_store
    from .modelfile import read_metadata

    entry = model_store.find(args.id)
    meta = read_metadata(entry.path)
    meta = {"identity": entry.identity, "path": str(entry.path), "source": entry.source, **meta}
    print(json.dumps(meta, indent=2, sort_keys=True))
    return 0


def _cmd_plugin_path(args) -> int:
    from .hdf5 import plugin_dir, plugin_file

    if not plugin_file().exists():
        print(f"saecodec: error: the HDF5 plugin is not built in {plugin_dir()}; reinstall with pip",
              file=sys.stderr)
        return 1
    print(plugin_dir())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saecodec", description="Learned lossy compression of 2D detector frames.")
    sub = p.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list, add and inspect model files")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="models found in the package, SAECODEC_MODEL_PATH and the user cache"
                    ).set_defaults(func=_cmd_models_list)
    a = msub.add_parser("add", help="copy a model file into the user cache")
    a.add_argument("file")
    a.set_defaults(func=_cmd_models_add)
    s = msub.add_parser("show", help="print a model's metadata (by identity, prefix or name)")
    s.add_argument("id")
    s.set_defaults(func=_cmd_models_show)

    sub.add_parser("plugin-path", help="directory of the HDF5 filter plugin, for HDF5_PLUGIN_PATH"
                   ).set_defaults(func=_cmd_plugin_path)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


def _extra_commands():
    from . import cli_bench, cli_files, cli_train

    return [cli_train.register, cli_bench.register, cli_files.register]


_EXTRA_COMMANDS = _extra_commands()


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except SaecodecError as e:
        print(f"saecodec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
