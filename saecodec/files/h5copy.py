"""Copy an HDF5/NeXus tree into a new file, except the datasets being compressed.

Groups on the way to a compressed dataset are recreated (same attributes, same
link/attribute order tracking); everything else is copied whole by ``H5Ocopy``
(``Group.copy``), which keeps filters, chunks, fill values, attributes and the hard links
inside it. Soft and external links are recreated as links, and a second hard link to an
object already copied becomes a hard link again, never a second copy.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
from h5py import h5a, h5p, h5s, h5t


def _has_refs(tid) -> bool:
    cls = tid.get_class()
    if cls == h5t.REFERENCE:
        return True
    if cls == h5t.COMPOUND:
        return any(_has_refs(tid.get_member_type(i)) for i in range(tid.get_nmembers()))
    if cls in (h5t.ARRAY, h5t.VLEN):
        return _has_refs(tid.get_super())
    return False


def copy_attrs(src, dst) -> None:
    """Attributes with their exact file type and dataspace (string padding, char set, scalar
    or shape (1,), empty attributes)."""
    for name in src.attrs:
        bname = name.encode("utf-8")
        a = h5a.open(src.id, bname)
        ftype, space = a.get_type(), a.get_space()
        if _has_refs(ftype):
            print(f"saecodec: warning: attribute {src.name}@{name} holds object references; they point into "
                  "the input file", file=sys.stderr)
        new = h5a.create(dst.id, bname, ftype, space)
        if space.get_simple_extent_type() == h5s.NULL:
            continue
        buf = np.empty(space.shape if space.get_simple_extent_type() == h5s.SIMPLE else (), dtype=a.dtype)
        a.read(buf)
        new.write(buf)


def tracked(obj) -> bool:
    plist = obj.id.get_create_plist()
    flags = plist.get_link_creation_order() if isinstance(obj, h5py.Group) else plist.get_attr_creation_order()
    return bool(flags & h5p.CRT_ORDER_TRACKED)


def root_track_order(src: h5py.File) -> bool:
    return tracked(src["/"])


def copy_tree(src: h5py.File, dst: h5py.File, targets: set, make_target) -> dict:
    """Copies ``src`` into the empty ``dst``; for each dataset whose id is in ``targets``,
    calls ``make_target(src_dataset, dst_group, name)`` instead. Returns {id: new name}."""
    done: dict = {}
    contains: dict = {}

    def holds_target(g) -> bool:
        if g.id not in contains:
            contains[g.id] = False  # cycles of hard links end here
            found = False
            for name in g:
                if not isinstance(g.get(name, getlink=True), h5py.HardLink):
                    continue
                obj = g[name]
                if obj.id in targets or (isinstance(obj, h5py.Group) and holds_target(obj)):
                    found = True
                    break
            contains[g.id] = found
        return contains[g.id]

    def remember_subtree(s: h5py.Group, d_name: str):
        s.visititems(lambda rel, o: done.setdefault(o.id, f"{d_name}/{rel}") and None)

    def walk(s: h5py.Group, d: h5py.Group):
        for name in s:
            link = s.get(name, getlink=True)
            if isinstance(link, h5py.SoftLink):
                d[name] = h5py.SoftLink(link.path)
                continue
            if isinstance(link, h5py.ExternalLink):
                d[name] = h5py.ExternalLink(link.filename, link.path)
                continue
            obj = s[name]
            if obj.id in done:
                d[name] = dst[done[obj.id]]
            elif isinstance(obj, h5py.Dataset) and obj.id in targets:
                done[obj.id] = make_target(obj, d, name).name
            elif isinstance(obj, h5py.Group) and holds_target(obj):
                g = d.create_group(name, track_order=tracked(obj))
                done[obj.id] = g.name
                copy_attrs(obj, g)
                walk(obj, g)
            else:
                s.copy(obj, d, name=name)
                done[obj.id] = d[name].name
                if isinstance(obj, h5py.Group):
                    remember_subtree(obj, d[name].name)

    copy_attrs(src, dst)
    done[src["/"].id] = "/"
    walk(src["/"], dst["/"])
    return done
