"""``saecodec bench``: saecodec against SZ3, ZFP, SPERR, zstd, an 8x8 DCT and PCA, in one process.

``datasets`` (what is compressed), ``baselines`` (the L1 paper's DCT and PCA),
``fits`` (refitting the generating model), ``run`` (every method through h5py),
``report`` (markdown, JSON, plots); the errors themselves are :mod:`saecodec.metrics`.
"""
