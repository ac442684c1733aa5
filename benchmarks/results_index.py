"""Write the index of benchmarks/results/ into docs/results.md (between its markers).

One row per results file: what it holds (its Markdown title, a text file's first line, or
the producing script's first docstring line), the date it records, and the command that
regenerates it. The producer is the script of the same stem in benchmarks/ or
benchmarks/archive/ (``files_throughput_memory.md`` -> ``files_throughput.py``), else an
entry of PRODUCERS; a results file with neither is an error, so a new results file gets
its regenerating command written down.

    python benchmarks/results_index.py           # rewrite the index
    python benchmarks/results_index.py --check   # exit 1 if it is out of date (tests/test_docs.py)
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "results.md"
START, END = "<!-- results-index:start -->", "<!-- results-index:end -->"

# Results whose file name names no script: the command that regenerates them.
PRODUCERS = {
    "bench_log_2000*": "saecodec bench --models sas64-l1 --tag bench_log_2000",
    "rd_2000*": "saecodec bench --suite rd --tag 2000",
    "bounds.*": "saecodec bench --suite bounds --repeat 3 --tag bounds",
    "default_candidates_run*.json": "python benchmarks/archive/train_default.py",
    "torch_free_reader.md": "by hand (the steps are in the file)",
    "wavelet_research.md": "the scripts in benchmarks/archive/wavelet_research/ (each file's docstring)",
    "wavelet_train.*": "nice -n 10 python benchmarks/train_wavelet.py --out runs/sas-wavelet (report.json, copied)",
}
DATE = re.compile(r"\b(20\d\d-\d\d-\d\d)\b")


def script_for(name: str) -> Path | None:
    """The script of the longest ``_``-prefix of the file's stem, in benchmarks/ or archive/."""
    parts = name.split(".")[0].split("_")
    for n in range(len(parts), 0, -1):
        stem = "_".join(parts[:n])
        for d in (ROOT / "benchmarks", ROOT / "benchmarks" / "archive"):
            if (d / f"{stem}.py").is_file():
                return d / f"{stem}.py"
    return None


def producer(name: str) -> str:
    for pattern, command in PRODUCERS.items():
        if fnmatch.fnmatch(name, pattern):
            return command
    script = script_for(name)
    if script is None:
        raise SystemExit(f"benchmarks/results/{name}: no script of that name in benchmarks/ or "
                         "benchmarks/archive/; add its command to PRODUCERS in benchmarks/results_index.py")
    return f"python {script.relative_to(ROOT).as_posix()}"


def recorded_date(path: Path) -> str:
    """The date a results file records: a JSON ``date``, else the first date in its text."""
    if not path.is_file() or path.suffix == ".png":
        return ""
    text = path.read_text(errors="replace")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and DATE.match(str(data.get("date", ""))):
            return str(data["date"])[:10]
    found = DATE.search(text[:4000])
    return found.group(1) if found else ""


def describe(path: Path) -> tuple[str, str]:
    """(what it holds, the date it records or its sibling's, or '')."""
    date = recorded_date(path) or recorded_date(path.with_suffix(".json")) or recorded_date(path.with_suffix(".md"))
    if path.suffix == ".png":
        tables = [p for p in RESULTS.glob("*.md") if path.stem.startswith(p.stem + "_")]
        table = max(tables, key=lambda p: len(p.stem), default=None)
        return (f"plot of {table.name}" if table else "plot"), date or (recorded_date(table) if table else "")
    if path.suffix == ".json":
        sibling = path.with_suffix(".md")
        if sibling.exists():
            return f"data of {sibling.name}", date
        command = producer(path.name).split()
        script = ROOT / command[1] if command[0] == "python" else None
        doc = ast.get_docstring(ast.parse(script.read_text())) if script and script.is_file() else None
        return ((doc or "").strip().splitlines() or ["data"])[0].rstrip("."), date
    first = next((line for line in path.read_text(errors="replace").splitlines() if line.strip()), "")
    return first.lstrip("#").strip(), date


def rows() -> list[str]:
    out = ["| file | what | date | regenerate |", "|---|---|---|---|"]
    for path in sorted(p for p in RESULTS.iterdir() if p.is_file() and not p.name.startswith(".")):
        what, date = describe(path)
        what = what.replace("|", "\\|")
        command = producer(path.name)
        command = f"`{command}`" if command.split()[0] in ("python", "saecodec") else command
        out.append(f"| [{path.name}](../benchmarks/results/{path.name}) | {what} | {date} | {command} |")
    return out


def render(doc: str) -> str:
    head, sep, rest = doc.partition(START)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise SystemExit(f"{DOC}: the markers {START} and {END} are missing")
    return head + START + "\n" + "\n".join(rows()) + "\n" + END + tail


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if docs/results.md's index is out of date")
    args = p.parse_args(argv)
    doc = DOC.read_text()
    new = render(doc)
    if args.check:
        if new != doc:
            print("docs/results.md: the results index is out of date; run python benchmarks/results_index.py",
                  file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
