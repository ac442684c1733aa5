"""The ``saecodec`` command line: each module in ``_extra_commands`` adds its commands with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import shlex
import sys

from .errors import SaecodecError


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
    sub.add_parser("plugin-path", help="directory of the HDF5 filter plugin, for HDF5_PLUGIN_PATH"
                   ).set_defaults(func=_cmd_plugin_path)
    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


def _extra_commands():
    from . import cli_bench, cli_demo, cli_files, cli_models, cli_simulate, cli_train

    return [cli_models.register, cli_simulate.register, cli_train.register, cli_demo.register, cli_bench.register,
            cli_files.register]


_EXTRA_COMMANDS = _extra_commands()


def main(argv=None) -> int:
    """Run one command; ``args.command_line`` is the command as typed (results record it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["saecodec", *argv])
    try:
        return args.func(args) or 0
    except SaecodecError as e:
        print(f"saecodec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
