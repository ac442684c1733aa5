"""Builds, during pip install: the HDF5 filter plugin (c_filter/) into saecodec/plugin/, the
compiled bound/lossless coder (c_fastcode/) as saecodec.coding._fastcode, and the wavelet
family's engine (c_wavelet/) as saecodec.coding._wavelet."""

import os
import site
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "c_filter"))
sys.path.insert(0, os.path.join(HERE, "c_fastcode"))
sys.path.insert(0, os.path.join(HERE, "c_wavelet"))
from embed_build import make_ffi  # noqa: E402
from fastcode_build import make_ffi as fastcode_ffi  # noqa: E402
from wavelet_build import make_ffi as wavelet_ffi  # noqa: E402

PLUGIN = "saecodec.plugin.libh5saecodec"


def python_library() -> str:
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    for name in (sysconfig.get_config_var("INSTSONAME"), sysconfig.get_config_var("LDLIBRARY")):
        if name and os.path.exists(os.path.join(libdir, name)):
            return os.path.join(libdir, name)
    return sysconfig.get_config_var("INSTSONAME") or "libpython3.so"


def site_dirs():
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    try:
        dirs += site.getsitepackages()
    except AttributeError:
        pass
    out = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


embed_ext = make_ffi(site_dirs()).distutils_extension(tmpdir="build")


def patch_cffi_start_lock(path: str) -> None:
    """Use cffi's Python >= 3.12 start-up lock on every Python version.

    Before 3.12, cffi's generated start-up code spins until PyCapsule_Type.tp_version_tag
    is 0. In a process that has already used capsules (numpy and h5py do) the tag is
    set, so the first filter call from h5py would spin forever. The 3.12 variant locks
    on PyCapsule_Type.tp_as_buffer, which is NULL on every version.
    """
    with open(path) as f:
        text = f.read()
    old = "#  if PY_VERSION_HEX < 0x030C0000\n    int volatile *lock"
    if old in text:
        text = text.replace(old, "#  if 0  /* patched by saecodec's setup.py */\n    int volatile *lock")
        text = text.replace("#  if PY_VERSION_HEX < 0x030C0000\n            assert(old_value == locked_value);",
                            "#  if 0\n            assert(old_value == locked_value);")
        with open(path, "w") as f:
            f.write(text)
    elif "patched by saecodec" not in text:
        raise RuntimeError("cffi's embedding start-up code changed; review patch_cffi_start_lock in setup.py")


patch_cffi_start_lock(embed_ext.sources[0])
embed_suffix = sysconfig.get_config_var("EXT_SUFFIX")


def c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


plugin_ext = Extension(
    PLUGIN,
    sources=["c_filter/h5saecodec.c"],
    define_macros=[
        ("SAE_PYTHON_LIBRARY", c_string(python_library())),
        ("SAE_PYTHON_HOME", c_string(sys.base_prefix)),
        ("SAE_EMBED_NAME", c_string("_saecodec_h5embed" + embed_suffix)),
    ],
    libraries=["dl", "pthread"],
)


class BuildExt(build_ext):
    def get_ext_filename(self, fullname):
        # HDF5 loads only lib*.so from a plugin directory. distutils asks with the last
        # name component, setuptools' editable install with the full dotted name.
        if fullname == PLUGIN or fullname == PLUGIN.rsplit(".", 1)[1]:
            return os.path.join(*fullname.split(".")[:-1], "libh5saecodec.so")
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext):
        if ext.name == PLUGIN:
            return ["H5PLget_plugin_type", "H5PLget_plugin_info"]
        return super().get_export_symbols(ext)


# Sources relative to setup.py, as setuptools wants them.
fastcode_ext = fastcode_ffi(src="c_fastcode").distutils_extension(tmpdir="build")
wavelet_ext = wavelet_ffi(src="c_wavelet").distutils_extension(tmpdir="build")

setup(ext_modules=[embed_ext, plugin_ext, fastcode_ext, wavelet_ext], cmdclass={"build_ext": BuildExt})
