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

static embed_fn load_embed(void) {
    pthread_mutex_lock(&embed_lock);
    if (embed_entry) goto done;
    if (!python_symbols_global()) {
        /* A C host: no Python yet (or only a private copy). Point the interpreter at the
           prefix the plugin was built for, unless the user chose another. */
        setenv("PYTHONHOME", SAE_PYTHON_HOME, 0);
        if (!dlopen(SAE_PYTHON_LIBRARY, RTLD_NOW | RTLD_GLOBAL)) {
            fprintf(stderr, "saecodec HDF5 filter: cannot load %s: %s\n", SAE_PYTHON_LIBRARY, dlerror());
            goto done;
        }
    }
    Dl_info info;
    if (!dladdr((void *)&H5PLget_plugin_info, &info) || !info.dli_fname) {
        fprintf(stderr, "saecodec HDF5 filter: cannot find the plugin's own directory\n");
        goto done;
    }
    char path[4096];
    const char *slash = strrchr(info.dli_fname, '/');
    size_t dirlen = slash ? (size_t)(slash - info.dli_fname) : 1;
    if (snprintf(path, sizeof path, "%.*s/%s", (int)dirlen, slash ? info.dli_fname : ".", SAE_EMBED_NAME) >=
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
