"""cffi embedding: the library through which the C plugin calls the Python codec.

Built by setup.py (``pip install``) next to the plugin. In an interpreter it started itself
(a C host such as h5dump) its init code puts the site-packages directories of the
installing Python on ``sys.path``; a Python host keeps its own (the plugin checked that it
can import saecodec). Then the exported ``saecodec_h5_filter``
runs :func:`saecodec.plugin.filter.filter_call`.
"""

import cffi

MODULE = "saecodec.plugin._saecodec_h5embed"

API = """
int saecodec_h5_filter(unsigned int flags, size_t cd_nelmts, const unsigned int *cd_values,
                       size_t nbytes, size_t *buf_size, void **buf, size_t *out_nbytes);
"""

INIT = r'''
import sys
# Started by a C host (no h5py loaded): saecodec must not import h5py in this process.
sys._saecodec_c_host = "h5py" not in sys.modules
# The build's site-packages only in an interpreter this library started (a C host): a
# Python host that loaded the plugin (h5py) keeps its own sys.path; the plugin checked first
# that it can import saecodec and cffi (c_filter/h5saecodec.c, python_host_refuses).
if not getattr(sys, "_saecodec_h5_python_host", False):
    for _d in {site_dirs!r}:
        if _d not in sys.path:
            import site
            site.addsitedir(_d)
from saecodec.plugin._saecodec_h5embed import ffi, lib


def _report(exc, value, tb):
    try:
        sys.stderr.write("saecodec HDF5 filter: error: %s: %s\n" % (exc.__name__, value))
        sys.stderr.flush()
    except Exception:
        pass


@ffi.def_extern(error=-1, onerror=_report)
def saecodec_h5_filter(flags, cd_nelmts, cd_values, nbytes, buf_size, buf, out_nbytes):
    from saecodec.plugin.filter import filter_call

    cd = ffi.unpack(cd_values, cd_nelmts) if cd_nelmts else []  # one call, not one index per value
    out = filter_call(int(flags), cd, ffi.buffer(buf[0], nbytes))
    n = len(out)
    p = lib.malloc(max(n, 1))
    if p == ffi.NULL:
        raise MemoryError("cannot allocate %d bytes for the filter output" % n)
    ffi.memmove(p, out, n)
    lib.free(buf[0])
    buf[0] = p
    buf_size[0] = max(n, 1)
    out_nbytes[0] = n
    return 0
'''


def make_ffi(site_dirs):
    ffi = cffi.FFI()
    ffi.embedding_api(API)
    ffi.cdef("void *malloc(size_t); void free(void *);")
    ffi.set_source(MODULE, "#include <stdlib.h>")
    ffi.embedding_init_code(INIT.format(site_dirs=list(site_dirs)))
    return ffi
