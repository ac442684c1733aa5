"""Home of the built HDF5 filter plugin (libh5saecodec.so) and its cffi-embedded library."""
