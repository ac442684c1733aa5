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


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1].strip() == readme_commands()[1]


def test_default_model_in_readme_is_shipped():
    from saecodec import model_store

    names = {e.name for e in model_store.list_models() if e.source == "package"}
    readme = (ROOT / "README.md").read_text()
    assert model_store.DEFAULT_MODEL in names and "sas64-l1" in names  # the L1 paper's reference stays
    assert f"default model `{model_store.DEFAULT_MODEL}`" in readme and "sas64-l1" in readme
