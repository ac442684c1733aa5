"""The ``saecodec`` command line: each module in ``_extra_commands`` adds its commands with ``register(subparsers)``.

Exit codes (the same for every command, docs/guide.md, "Files CLI"): 0 success; 1 a
check failed (``verify``: a bound broken, a masked element changed, I(q) or total counts
beyond their tolerance); 2 the command could not run or could not check (bad arguments, a
missing or unreadable file, a model not found); 130 interrupted (Ctrl-C). Errors are one
line on stderr; ``SAECODEC_TRACEBACK=1`` shows the Python traceback as well.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings

from .errors import SaecodecError

EXIT_OK, EXIT_CHECK_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _cmd_plugin_path(args) -> int:
    from .hdf5 import plugin_dir, plugin_file

    if not plugin_file().exists():
        print(f"saecodec: error: the HDF5 plugin is not built in {plugin_dir()}; reinstall with pip",
              file=sys.stderr)
        return EXIT_ERROR
    parts = [str(plugin_dir())]
    if args.with_hdf5plugin:
        try:
            import hdf5plugin
        except ImportError:
            raise SaecodecError("--with-hdf5plugin: hdf5plugin is not installed (pip install hdf5plugin)") from None
        parts.append(hdf5plugin.PLUGIN_PATH)
    print(os.pathsep.join(parts))
    return EXIT_OK


def _version() -> str:
    from . import __version__

    return f"saecodec {__version__} (Python {sys.version.split()[0]})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saecodec", description="Learned lossy compression of 2D detector frames.",
                                epilog="exit codes: 0 ok, 1 a check failed (verify), 2 error / could not check, "
                                       "130 interrupted")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", required=True)
    pp = sub.add_parser("plugin-path", help="directory of the HDF5 filter plugin, for HDF5_PLUGIN_PATH")
    pp.add_argument("--with-hdf5plugin", action="store_true",
                    help="append hdf5plugin's directory (Bitshuffle, Blosc, SZ3...) so that h5dump finds both")
    pp.set_defaults(func=_cmd_plugin_path)
    for register in _EXTRA_COMMANDS:
        register(sub)
    return p


def _extra_commands():
    from . import cli_bench, cli_demo, cli_files, cli_models, cli_simulate, cli_train

    return [cli_models.register, cli_simulate.register, cli_train.register, cli_demo.register, cli_bench.register,
            cli_files.register]


_EXTRA_COMMANDS = _extra_commands()


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"saecodec: warning: {message}", file=sys.stderr if file is None else file)


def _error_line(e: BaseException) -> str:
    """One line for any exception: its message, or its type when it has none."""
    text = " ".join(str(e).split()) if str(e).strip() else type(e).__name__
    if isinstance(e, SaecodecError):
        return text
    if isinstance(e, OSError) and getattr(e, "filename", None) and str(e.filename) not in text:
        text = f"{e.filename}: {text}"
    return f"{text} ({type(e).__name__})"


def main(argv=None) -> int:
    """Run one command; ``args.command_line`` is the command as typed (results record it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["saecodec", *argv])
    show_traceback = os.environ.get("SAECODEC_TRACEBACK", "") not in ("", "0")
    saved = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        return args.func(args) or EXIT_OK
    except KeyboardInterrupt:
        left = "; no output written" if args.command in ("compress", "decompress") else ""
        print(f"saecodec: interrupted{left}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # noqa: BLE001 - one line for the user; SAECODEC_TRACEBACK=1 for the details
        if show_traceback:
            import traceback

            traceback.print_exc()
        print(f"saecodec: error: {_error_line(e)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        warnings.showwarning = saved


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
