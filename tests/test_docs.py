"""The README's set-up commands are the ones CI and users run."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Set-up\n.*?```(?:bash|sh)?\n(.*?)```", text, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


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
    import ast
    import re
    import sys
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["test"]
    names = {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower().replace("-", "_") for r in reqs}
    names |= {n.split("[")[0] for n in list(names)}
    provides = {"pyfai": "pyfai", "h5py": "h5py", "yaml": "pyyaml", "pil": "pillow"}
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


def test_default_model_in_readme_is_shipped():
    from saecodec import model_store

    names = {e.name for e in model_store.list_models() if e.source == "package"}
    readme = (ROOT / "README.md").read_text()
    assert model_store.DEFAULT_MODEL in names and "sas64-l1" in names  # the L1 paper's reference stays
    assert f"default model `{model_store.DEFAULT_MODEL}`" in readme and "sas64-l1" in readme
