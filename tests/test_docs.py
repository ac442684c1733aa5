"""The README and the docs say what the code does: the set-up commands are the ones CI and
users run, the Python blocks run, the CLI lines parse, the links resolve, the options table
is the codec's signature, and the results index lists benchmarks/results/ as it is."""

import ast
import importlib.util
import inspect
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "guide.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]


def readme_commands():
    text = README.read_text()
    block = re.search(r"## Set-up\n.*?```(?:bash|sh)?\n(.*?)```", text, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def blocks(path: Path, lang: str) -> list[str]:
    """The fenced code blocks of one language, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", path.read_text(), re.S | re.M)


def prose(path: Path) -> str:
    """The text outside fenced code blocks."""
    return re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)


def test_readme_gives_two_setup_commands():
    cmds = readme_commands()
    assert len(cmds) == 2
    assert cmds[0].startswith("pip install") and "saecodec demo" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_commands_verbatim_and_installs_nothing_else():
    """CI runs the README's two commands, in order, as its last two lines; its only other
    install is the system package h5dump comes from (a test extra that lacked pytest once
    hid behind an extra install line here)."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert ci[-2:] == readme_commands()
    installs = [line for line in ci[:-2] if "pip" in line.split() or "install" in line.split()]
    assert all("apt-get" in line for line in installs), installs


def test_the_test_extra_holds_what_the_suite_imports():
    """The README's first command installs ``.[test]``: every third-party module the tests
    import must come with it (or with saecodec itself)."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["test"]
    names = {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower().replace("-", "_") for r in reqs}
    names |= {n.split("[")[0] for n in list(names)}
    provides = {"pyfai": "pyfai", "h5py": "h5py", "yaml": "pyyaml", "pil": "pillow", "pywt": "pywavelets"}
    imported = set()
    for f in (ROOT / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("need", "importorskip") and \
                    node.args and isinstance(node.args[0], ast.Constant):
                imported.add(node.args[0].value.split(".")[0])
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "importorskip" and \
                    node.args and isinstance(node.args[0], ast.Constant):
                imported.add(node.args[0].value.split(".")[0])
    local = {p.stem for p in (ROOT / "tests").glob("*.py")} | {"saecodec", "conftest"}
    third = {m for m in imported if m not in sys.stdlib_module_names and m not in local}
    missing = {m for m in third if provides.get(m.lower(), m.lower()) not in names}
    assert not missing, f"tests import {sorted(missing)}, which pyproject's test extra does not install"
    # the suite runs `saecodec bench` (plots) and compress/verify (images, I(q)): their extras too
    extras = meta["optional-dependencies"]
    assert set(extras["bench"]) | set(extras["files"]) <= set(extras["test"])


def test_the_default_model_is_shipped_and_named_where_the_docs_say():
    """The README names the shipped default, the guide the L1 paper's reference model; every
    model the README's and the guide's code names is a shipped one (so switching the default
    fails here until the docs follow)."""
    from saecodec import model_store

    names = {e.name for e in model_store.list_models() if e.source == "package"}
    assert model_store.DEFAULT_MODEL in names and "sas64-l1" in names  # the L1 paper's reference stays
    assert f"default model `{model_store.DEFAULT_MODEL}`" in README.read_text()
    assert "sas64-l1" in GUIDE.read_text()
    code = "\n".join(b for doc in (README, GUIDE) for lang in ("python", "bash") for b in blocks(doc, lang))
    named = set(re.findall(r"""model[= ]+["']([\w.-]+)["']""", code))
    named |= set(re.findall(r"saecodec models (?:show|derive) ([\w.-]+)", code))
    assert named and named <= names, named - names


def test_readme_is_a_front_page():
    """At most 170 lines, no run dates or commit hashes, and every number of the modes
    table behind a link to its measurement."""
    text = README.read_text()
    assert len(text.splitlines()) <= 170
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text)
    hashes = [h for h in re.findall(r"\b[0-9a-f]{7,40}\b", text) if re.search(r"[a-f]", h) and re.search(r"\d", h)]
    assert not hashes, hashes
    modes = re.search(r"^## Modes\n(.*?)^## ", text, re.S | re.M).group(1)
    rows = [line for line in modes.splitlines() if line.startswith("| ") and not line.startswith("| mode")]
    assert [r.split("|")[1].split(",")[0].split("(")[0].strip() for r in rows] == [
        "pure", "abs", "pwrel", "poisson", "lossless"]
    for row in rows:
        headline = row.rstrip(" |").rsplit("|", 1)[1]
        assert re.search(r"\]\((?:benchmarks/results|docs/results\.md)", headline), row


# -- the Python blocks run ---------------------------------------------------------------------

def tiny_frames():
    """16 SAS-like frames (a power-law ring over a flat background), float32, 48x64."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :64]
    r = np.hypot(yy - 20.0, xx - 30.0)[None] + rng.uniform(0, 2, (16, 1, 1))
    return (1e3 / (1 + (r / 6) ** 4) + 0.5 + rng.normal(0, 0.05, (16, 48, 64))).astype("f4")


def tiny_counts():
    """4 frames of int32 Poisson counts with a Pilatus gap row (-1) and dead pixels (-2)."""
    rng = np.random.default_rng(1)
    c = rng.poisson(tiny_frames()[:4]).astype("i4")
    c[:, 10, :] = -1
    c[:, 30, 5:9] = -2
    return c


def run_session(doc: Path, namespace: dict) -> dict:
    for i, code in enumerate(blocks(doc, "python")):
        try:
            exec(compile(code, f"{doc.name}, python block {i + 1}", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{doc.relative_to(ROOT)}, python block {i + 1} failed: {e!r}\n{code}") from e
    return namespace


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames, counts = tiny_frames(), tiny_counts()
    ns = run_session(README, {"frames": frames, "counts": counts})
    from saecodec.model_store import DEFAULT_MODEL

    assert ns["model"] == DEFAULT_MODEL
    import h5py
    import zarr

    for back in (zarr.open_array("frames.zarr")[...], zarr.open_array("frames3.zarr")[...],
                 h5py.File("frames.h5")["frames"][...]):
        assert back.shape == frames.shape and back.dtype == frames.dtype
    with h5py.File("counts.h5") as f:  # poisson: within 0.5 sqrt(max(x, 1)), sentinels exact
        got = f["counts"][...]
    assert np.all(np.abs(got.astype(float) - counts) <= 0.5 * np.sqrt(np.maximum(counts, 1)) + 1e-9)
    assert np.array_equal(got[counts < 0], counts[counts < 0])


def test_guide_python_blocks_run(tmp_path, monkeypatch):
    import h5py

    monkeypatch.chdir(tmp_path)
    counts = tiny_counts()
    with h5py.File("run.nxs", "w") as f:
        f.create_dataset("entry/instrument/detector/data", data=counts)
    ns = run_session(GUIDE, {"frames": tiny_frames(), "counts": counts})
    import zarr

    assert np.array_equal(zarr.open_array("run2.zarr")[...], counts)  # lossless
    back = zarr.open_array("run3.zarr")[...]
    assert np.all(np.abs(back.astype(float) - counts) <= 0.5 * np.sqrt(np.maximum(counts, 1)) + 1e-9)
    assert "model" in ns


# -- the CLI lines parse -----------------------------------------------------------------------

def cli_lines(doc: Path) -> list[list[str]]:
    """Every ``saecodec ...`` command of the document's bash blocks, as argv (without the
    program name): whole lines, commands after ``&&``, and ``$(saecodec ...)``."""
    out = []
    for block in blocks(doc, "bash"):
        for line in block.splitlines():
            for sub in re.findall(r"\$\((saecodec [^)]*)\)", line):
                out.append(shlex.split(sub)[1:])
            for part in re.split(r"&&|\|\||;", line):
                words = shlex.split(part, comments=True)
                if words and words[0] == "saecodec":
                    out.append(words[1:])
    return out


@pytest.mark.parametrize("doc", [README, GUIDE], ids=lambda p: p.name)
def test_cli_lines_parse(doc):
    from saecodec.cli import build_parser

    lines = cli_lines(doc)
    assert lines
    for argv in lines:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:
            raise AssertionError(f"{doc.name}: `saecodec {shlex.join(argv)}` does not parse") from e
        assert callable(args.func)
    for block in blocks(doc, "bash"):
        for module in re.findall(r"python -m ([\w.]+)", block):
            assert importlib.util.find_spec(module), module


# -- links -------------------------------------------------------------------------------------

def slugs(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    out = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(path), re.M):
        s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
        out.add(s.replace(" ", "-"))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    links = re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", prose(doc))
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.relative_to(ROOT)}: link to {link}: no such file"
        if anchor and path.suffix == ".md":
            assert anchor in slugs(path), f"{doc.relative_to(ROOT)}: link to {link}: no such heading"


# -- the options table -------------------------------------------------------------------------

def test_options_table_is_the_codec_signature():
    """docs/guide.md's table of options lists every parameter of the one signature
    (saecodec.options: the fields, device, the old names) with a new codec's default."""
    from saecodec import SAECodec

    section = re.search(r"^## Options\n(.*?)^## ", GUIDE.read_text(), re.S | re.M).group(1)
    rows = re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", section, re.M)
    params = [p for p in inspect.signature(SAECodec.__init__).parameters.values() if p.name != "self"]
    assert [name for name, _ in rows] == [p.name for p in params]
    for (name, default), p in zip(rows, params):
        assert ast.literal_eval(default) == p.default, name


# -- the results index -------------------------------------------------------------------------

def test_results_index_is_up_to_date():
    spec = importlib.util.spec_from_file_location("results_index", ROOT / "benchmarks" / "results_index.py")
    index = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(index)
    doc = index.DOC.read_text()
    assert index.render(doc) == doc, "run python benchmarks/results_index.py"
    listed = set(re.findall(r"\]\(\.\./benchmarks/results/([^)]+)\)", doc.partition(index.START)[2]))
    assert listed == {p.name for p in index.RESULTS.iterdir() if p.is_file() and not p.name.startswith(".")}
