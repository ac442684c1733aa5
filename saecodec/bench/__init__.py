"""``saecodec bench``: saecodec against SZ3, ZFP, SPERR, zstd, an 8x8 DCT and PCA, in one process.

``datasets`` (what is compressed), ``baselines`` (the L1 paper's DCT and PCA),
``fits`` (refitting the generating model), ``run`` (every method through h5py),
``report`` (markdown, JSON, plots); ``bounds`` (the bound modes on real and raw frames); ``rd``
and ``rd_report`` (the pure mode's rate-distortion curve against SPERR, SZ3 and ZFP at equal
error); the errors themselves are :mod:`saecodec.metrics`.
"""
