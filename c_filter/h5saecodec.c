/*
 * HDF5 dynamic filter plugin for saecodec.
 *
 * A small pure-C library: it links neither libhdf5 nor libpython, so one build serves
 * h5py's bundled HDF5 2.x and Debian's HDF5 1.10 tools, and HDF5 can scan the plugin
 * directory without starting Python. On the first filter call it
 *   1. makes libpython's symbols global if the host has not (a C host such as h5dump,
 *      or a library loaded RTLD_LOCAL), so that extension modules resolve PyExc_* etc.,
 *   2. sets PYTHONHOME to the build's Python prefix in a C host, so the embedded
 *      interpreter finds the right standard library,
 *   3. dlopens the cffi-embedded library next to this file, whose entry point runs the
 *      Python codec (saecodec.plugin.filter.filter_call) with the GIL taken by cffi.
 * Any failure prints a message to stderr and returns 0: HDF5 then reports an I/O error.
 *
 * set_local fills in what depends on the dataset (element type, chunk shape), reading
 * them through HDF5 functions found at run time in the HDF5 library already loaded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SAE_PYTHON_LIBRARY
#error "SAE_PYTHON_LIBRARY (path of libpython) must be defined"
#endif
#ifndef SAE_PYTHON_HOME
#error "SAE_PYTHON_HOME (sys.base_prefix) must be defined"
#endif
#ifndef SAE_EMBED_NAME
#error "SAE_EMBED_NAME (file name of the cffi-embedded library) must be defined"
#endif

#define SAE_DEFAULT_FILTER_ID 32850
#define SAE_CD_HEADER 12 /* version, 8 identity words, weight code, dtype code, rank */
#define SAE_MAX_OPTS 200 /* layout 2: option words (count at index 10); HDF5 refuses cd buffers over 256 */
#define SAE_MAX_RANK 32

/* --- the few HDF5 declarations we need (identical in 1.10, 1.12, 1.14 and 2.x) --- */
typedef int64_t hid_t;
typedef int herr_t;
typedef int htri_t;
typedef unsigned long long hsize_t;
typedef int H5Z_filter_t;
typedef htri_t (*H5Z_can_apply_func_t)(hid_t, hid_t, hid_t);
typedef herr_t (*H5Z_set_local_func_t)(hid_t, hid_t, hid_t);
typedef size_t (*H5Z_func_t)(unsigned, size_t, const unsigned[], size_t, size_t *, void **);
typedef struct {
    int version;
    H5Z_filter_t id;
    unsigned encoder_present;
    unsigned decoder_present;
    const char *name;
    H5Z_can_apply_func_t can_apply;
    H5Z_set_local_func_t set_local;
    H5Z_func_t filter;
} H5Z_class2_t;
#define H5Z_CLASS_T_VERS 1
#define H5Z_FLAG_REVERSE 0x0100
#define H5PL_TYPE_FILTER 0
enum { H5T_INTEGER = 0, H5T_FLOAT = 1 };
enum { H5T_ORDER_LE = 0 };
enum { H5T_SGN_NONE = 0 };

static size_t sae_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                         size_t *buf_size, void **buf);
static herr_t sae_set_local(hid_t dcpl, hid_t type, hid_t space);

static H5Z_class2_t sae_class = {
    H5Z_CLASS_T_VERS, SAE_DEFAULT_FILTER_ID, 1, 1, "saecodec (learned lossy, https://pypi.org/project/saecodec)",
    NULL, sae_set_local, sae_filter,
};

static int filter_id(void) {
    const char *env = getenv("SAECODEC_H5_FILTER_ID");
    if (env && *env) {
        long v = strtol(env, NULL, 10);
        if (v >= 256 && v <= 65535) return (int)v;
        fprintf(stderr, "saecodec HDF5 filter: ignoring SAECODEC_H5_FILTER_ID=%s (not in 256..65535)\n", env);
    }
    return SAE_DEFAULT_FILTER_ID;
}

int H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }

const void *H5PLget_plugin_info(void) {
    sae_class.id = filter_id();
    return &sae_class;
}

/* --- the embedded Python side ------------------------------------------------------ */
typedef int (*embed_fn)(unsigned, size_t, const unsigned *, size_t, size_t *, void **, size_t *);
static embed_fn embed_entry = NULL;
static pthread_mutex_t embed_lock = PTHREAD_MUTEX_INITIALIZER;

static int python_symbols_global(void) {
    void *self = dlopen(NULL, RTLD_NOW);
    int found = self && dlsym(self, "Py_IsInitialized") != NULL;
    if (self) dlclose(self);
    return found;
}

/* A Python host (h5py in some environment) runs the filter's Python side in its own
   interpreter, so that interpreter must be able to load an extension built for the build's
   Python (the embedded library's suffix is one of its extension suffixes) and import
   saecodec and cffi from its own sys.path. The build's site-packages are never added to a
   running host's sys.path (the embedded library adds them only in a C host, which it starts
   itself): a foreign environment gets one line naming what to install. The check runs in a
   namespace of its own, not the host's __main__. Returns 1 (refused, message printed) or 0. */
static const char host_check[] =
    "__import__('builtins').exec(r'''\n"
    "import sys, importlib.util as u, importlib.machinery as m\n"
    "sys._saecodec_h5_python_host = True\n"
    "py = '{} (Python {}.{})'.format(sys.executable or 'this process', *sys.version_info[:2])\n"
    "fix = 'install saecodec in this environment (pip install saecodec) and read with its plugin "
    "(HDF5_PLUGIN_PATH=$(saecodec plugin-path))'\n"
    "why = None\n"
    "if not name.endswith(tuple(m.EXTENSION_SUFFIXES)):\n"
    "    why = 'the plugin in ' + where + ' was built for another Python'\n"
    "else:\n"
    "    missing = [p for p, mod in (('saecodec', 'saecodec'), ('cffi', '_cffi_backend'))\n"
    "               if u.find_spec(mod) is None]\n"
    "    if missing:\n"
    "        why = 'it cannot import ' + ' and '.join(missing)\n"
    "if why:\n"
    "    sys._saecodec_h5_refused = True\n"
    "    sys.stderr.write('saecodec HDF5 filter: error: ' + py + ' cannot decode these chunks: ' + why\n"
    "                     + '; ' + fix + chr(10))\n"
    "    sys.stderr.flush()\n"
    "elif hasattr(sys, '_saecodec_h5_refused'):\n"
    "    del sys._saecodec_h5_refused\n"
    "''', {'name': r'''%s''', 'where': r'''%.*s'''})\n";

static int python_host_refuses(const char *dir, size_t dirlen) {
    typedef int (*int_fn)(void);
    typedef void (*release_fn)(int);
    typedef int (*run_fn)(const char *);
    typedef void *(*getobj_fn)(const char *);
    void *self = dlopen(NULL, RTLD_NOW);
    if (!self) return 0;
    int_fn is_init = (int_fn)dlsym(self, "Py_IsInitialized");
    int_fn ensure = (int_fn)dlsym(self, "PyGILState_Ensure");
    release_fn release = (release_fn)dlsym(self, "PyGILState_Release");
    run_fn run = (run_fn)dlsym(self, "PyRun_SimpleString");
    getobj_fn getobj = (getobj_fn)dlsym(self, "PySys_GetObject");
    int refused = 0;
    if (is_init && ensure && release && run && getobj && is_init()) {
        char code[sizeof host_check + 4096 + 256];
        if (dirlen > 4096 || snprintf(code, sizeof code, host_check, SAE_EMBED_NAME, (int)dirlen, dir) >=
                                 (int)sizeof code) {
            fprintf(stderr, "saecodec HDF5 filter: plugin path too long\n");
            dlclose(self);
            return 1;
        }
        int state = ensure();
        if (run(code) != 0) {
            fprintf(stderr, "saecodec HDF5 filter: error: cannot check this Python for saecodec\n");
            refused = 1;
        } else {
            refused = getobj("_saecodec_h5_refused") != NULL;
        }
        release(state);
    }
    dlclose(self);
    return refused;
}

static embed_fn load_embed(void) {
    pthread_mutex_lock(&embed_lock);
    if (embed_entry) goto done;
    Dl_info info;
    if (!dladdr((void *)&H5PLget_plugin_info, &info) || !info.dli_fname) {
        fprintf(stderr, "saecodec HDF5 filter: cannot find the plugin's own directory\n");
        goto done;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    size_t dirlen = slash ? (size_t)(slash - info.dli_fname) : 1;
    const char *dir = slash ? info.dli_fname : ".";
    if (python_symbols_global()) {
        if (python_host_refuses(dir, dirlen)) goto done;
    } else {
        /* A C host: no Python yet (or only a private copy). Point the interpreter at the
           prefix the plugin was built for, unless the user chose another. */
        setenv("PYTHONHOME", SAE_PYTHON_HOME, 0);
        if (!dlopen(SAE_PYTHON_LIBRARY, RTLD_NOW | RTLD_GLOBAL)) {
            fprintf(stderr, "saecodec HDF5 filter: cannot load %s: %s\n", SAE_PYTHON_LIBRARY, dlerror());
            goto done;
        }
    }
    char path[4096];
    if (snprintf(path, sizeof path, "%.*s/%s", (int)dirlen, dir, SAE_EMBED_NAME) >=
        (int)sizeof path) {
        fprintf(stderr, "saecodec HDF5 filter: plugin path too long\n");
        goto done;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        fprintf(stderr, "saecodec HDF5 filter: cannot load %s: %s\n", path, dlerror());
        goto done;
    }
    embed_entry = (embed_fn)dlsym(h, "saecodec_h5_filter");
    if (!embed_entry) fprintf(stderr, "saecodec HDF5 filter: %s has no saecodec_h5_filter\n", path);
done:
    pthread_mutex_unlock(&embed_lock);
    return embed_entry;
}

/* The bytes of the chunk set_local recorded in cd_values (element type code and dims after
   the options, docs/format.md codes), or 0 when they are missing or invalid. */
static size_t chunk_bytes(size_t n, const unsigned cd[]) {
    static const unsigned char item[12] = {0, 4, 8, 2, 1, 2, 4, 8, 1, 2, 4, 8};
    if (n < 11) return 0;
    size_t base = cd[0] >= 2 ? 11 + (size_t)cd[10] : 10;
    if (base + 2 > n) return 0;
    unsigned code = cd[base], rank = cd[base + 1];
    if (code < 1 || code > 11 || rank < 2 || rank > SAE_MAX_RANK || base + 2 + rank > n) return 0;
    size_t total = item[code];
    for (unsigned i = 0; i < rank; i++) {
        size_t d = cd[base + 2 + i];
        if (d == 0 || total > SIZE_MAX / d) return 0;
        total *= d;
    }
    return total;
}

static size_t sae_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes,
                         size_t *buf_size, void **buf) {
    /* HDF5 copies a whole chunk out of what a filter returns, whatever its size: on decode,
       anything but exactly the chunk set_local recorded is an error, never a short buffer. */
    size_t want = 0;
    if (flags & H5Z_FLAG_REVERSE) {
        want = chunk_bytes(cd_nelmts, cd_values);
        if (!want) {
            fprintf(stderr, "saecodec HDF5 filter: the dataset's cd_values do not give its chunk's type and shape\n");
            return 0;
        }
    }
    embed_fn fn = load_embed();
    if (!fn) return 0;
    size_t out = 0;
    if (fn(flags, cd_nelmts, cd_values, nbytes, buf_size, buf, &out) != 0) return 0;
    if (want && (out != want || *buf_size < want)) {
        fprintf(stderr, "saecodec HDF5 filter: decoded %zu bytes, the dataset's chunk has %zu\n", out, want);
        return 0;
    }
    return out;
}

/* --- set_local: element type and chunk shape into cd_values --------------------------- */
typedef int (*get_chunk_t)(hid_t, int, hsize_t *);
typedef int (*get_class_t)(hid_t);
typedef size_t (*get_size_t)(hid_t);
typedef int (*get_order_t)(hid_t);
typedef int (*get_sign_t)(hid_t);
typedef herr_t (*get_filter_t)(hid_t, H5Z_filter_t, unsigned *, size_t *, unsigned *, size_t, char *, unsigned *);
typedef herr_t (*modify_filter_t)(hid_t, H5Z_filter_t, unsigned, size_t, const unsigned *);

static void *hdf5_handle;

static int find_hdf5(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "hdf5")) return 0;
    void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
    if (h && dlsym(h, "H5Pmodify_filter")) {
        hdf5_handle = h;
        return 1;
    }
    if (h) dlclose(h);
    return 0;
}

static void *hdf5_sym(const char *name) {
    void *p = dlsym(RTLD_DEFAULT, name);
    if (p) return p;
    if (!hdf5_handle) dl_iterate_phdr(find_hdf5, NULL);
    return hdf5_handle ? dlsym(hdf5_handle, name) : NULL;
}

/* payload element type codes (docs/format.md) */
static unsigned dtype_code(int cls, size_t size, int is_signed) {
    if (cls == H5T_FLOAT) return size == 4 ? 1 : size == 8 ? 2 : size == 2 ? 3 : 0;
    if (cls != H5T_INTEGER) return 0;
    switch (size) {
    case 1: return is_signed ? 8 : 4;
    case 2: return is_signed ? 9 : 5;
    case 4: return is_signed ? 10 : 6;
    case 8: return is_signed ? 11 : 7;
    }
    return 0;
}

static herr_t sae_set_local(hid_t dcpl, hid_t type, hid_t space) {
    (void)space;
    get_chunk_t get_chunk = (get_chunk_t)hdf5_sym("H5Pget_chunk");
    get_class_t get_class = (get_class_t)hdf5_sym("H5Tget_class");
    get_size_t get_size = (get_size_t)hdf5_sym("H5Tget_size");
    get_order_t get_order = (get_order_t)hdf5_sym("H5Tget_order");
    get_sign_t get_sign = (get_sign_t)hdf5_sym("H5Tget_sign");
    get_filter_t get_filter = (get_filter_t)hdf5_sym("H5Pget_filter_by_id2");
    modify_filter_t modify = (modify_filter_t)hdf5_sym("H5Pmodify_filter");
    if (!get_chunk || !get_class || !get_size || !get_order || !get_sign || !get_filter || !modify) {
        fprintf(stderr, "saecodec HDF5 filter: HDF5 functions not found in this process\n");
        return -1;
    }
    unsigned flags = 0, cd[SAE_CD_HEADER + 1 + SAE_MAX_OPTS + SAE_MAX_RANK];
    size_t n = sizeof cd / sizeof cd[0];
    memset(cd, 0, sizeof cd);
    if (get_filter(dcpl, sae_class.id, &flags, &n, cd, 0, NULL, NULL) < 0) return -1;
    /* layout 1: dtype code at 10; layout 2: option count at 10, options, then dtype code */
    size_t base = cd[0] >= 2 ? 11 + (size_t)cd[10] : 10;
    if (n < 10 || (cd[0] >= 2 && (n < 11 || cd[10] > SAE_MAX_OPTS || n < base))) {
        fprintf(stderr, "saecodec HDF5 filter: %zu cd_values; use saecodec.hdf5.SAE(model=...) to set them\n", n);
        return -1;
    }
    hsize_t dims[SAE_MAX_RANK];
    int rank = get_chunk(dcpl, SAE_MAX_RANK, dims);
    if (rank < 2) {
        fprintf(stderr, "saecodec HDF5 filter: needs a chunked dataset of at least 2 dimensions\n");
        return -1;
    }
    int cls = get_class(type);
    unsigned code = dtype_code(cls, get_size(type), cls == H5T_INTEGER && get_sign(type) != H5T_SGN_NONE);
    if (!code || get_order(type) != H5T_ORDER_LE) {
        fprintf(stderr, "saecodec HDF5 filter: unsupported element type (little-endian ints and floats only)\n");
        return -1;
    }
    cd[base] = code;
    cd[base + 1] = (unsigned)rank;
    for (int i = 0; i < rank; i++) {
        if (dims[i] > 0xFFFFFFFFull) {
            fprintf(stderr, "saecodec HDF5 filter: chunk dimension %llu does not fit the 32-bit cd_values\n",
                    (unsigned long long)dims[i]);
            return -1;
        }
        cd[base + 2 + i] = (unsigned)dims[i];
    }
    return modify(dcpl, sae_class.id, flags, base + 2 + (size_t)rank, cd);
}
