"""Docs that match the code: every option of the Python command lines is named in its doc section,
and every flag of that section's flag tables is an option of one of them, checked by
tests/cli/docs_flags.sh as for the C binaries (tests/cli/CMakeLists.txt). --usage-only: argparse's
usage paragraph lists every option, while the help texts also name other commands' flags
(recarena-tune eval's name recarena-ab's). One call per doc section with all the command lines it
documents: recarena-tune's table is its five subcommands', each row some subcommand's."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "cli", "docs_flags.sh")
TUNE = os.path.join(ROOT, "docs", "tune.md") + "#1. The command line"
AGENTS = os.path.join(ROOT, "docs", "agents.md") + "#2.5 Plots and paired comparisons"

SECTIONS = {
    "recarena.tune": (TUNE, [["recarena.tune", sub]
                             for sub in ("search", "pbt", "report", "compare", "eval")]),
    "recarena.compare,plots": (AGENTS, [["recarena.compare"], ["recarena.plots"],
                                        ["recarena.meta_plots"]]),
}


@pytest.mark.parametrize("name", SECTIONS)
def test_docs_and_flags_match(name):
    doc, commands = SECTIONS[name]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.join(ROOT, "clients", "python")] + [p for p in [env.get("PYTHONPATH")] if p])
    argv = ["bash", SCRIPT, "--usage-only", doc]
    for command in commands:
        argv += ["--", sys.executable, "-m", *command]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
