"""What ships: the Lambda package's files, the image's content-hash tag, the Powertools layer ARN."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from components import artifacts
from components.config import ROOT
from components.notification import CRITERIA_HANDLER
from components.processing import METADATA_HANDLER


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    files = {
        "handlers/__init__.py": "", "handlers/metadata.py": "x = 1\n", "handlers/notes.md": "doc",
        "handlers/__pycache__/metadata.cpython-311.pyc": "bytecode", "handlers/tests/test_x.py": "",
        "contract/__init__.py": "", "contract/messages.py": "", "contract/messages.pyc": "",
        "container/main.py": "print()\n", "container/Dockerfile": "FROM python\n",
        "container/__pycache__/main.cpython-311.pyc": "", "local/portal.py": "", "tests/test_y.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_lambda_package_holds_only_python_files_of_handlers_and_contract(tree):
    assert artifacts.lambda_files(tree) == [
        "handlers/__init__.py", "handlers/metadata.py", "contract/__init__.py", "contract/messages.py"]


def test_lambda_archive_maps_each_packaged_file_to_its_source(tree):
    archive = artifacts.lambda_archive(tree)
    assert isinstance(archive, pulumi.AssetArchive)
    assert sorted(archive.assets) == sorted(artifacts.lambda_files(tree))
    asset = archive.assets["handlers/metadata.py"]
    assert isinstance(asset, pulumi.FileAsset) and asset.path == str(tree / "handlers/metadata.py")


def test_real_lambda_package_contains_the_contract_and_nothing_else(tmp_path):
    files = artifacts.lambda_files(ROOT)
    assert {"contract/__init__.py", "contract/messages.py"} <= set(files)
    assert all(f.endswith(".py") and f.split("/")[0] in ("handlers", "contract") for f in files)
    assert not any("__pycache__" in f or "/tests/" in f for f in files)


def shipped(files: list[str], into: Path) -> Path:
    """A copy of just the files that ship, as the Lambda runtime or the image holds them."""
    for name in files:
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, into / name)
    return into


def run_alone(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Python with only `cwd` and the installed libraries to import from: no checkout, no PYTHONPATH."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env={"PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)


def test_the_lambda_package_alone_imports_both_handlers(tmp_path):
    """A module the handlers import but the package lacks (say, a new contract module) fails
    here rather than at the Lambda's first cold start. The Lambda runtime has no numpy (only the
    harvester image installs it): the record count falls back to bytes methods there."""
    package = shipped(artifacts.lambda_files(ROOT), tmp_path)
    code = "; ".join(["import importlib, sys", "sys.path.insert(0, '.')", "sys.modules['numpy'] = None", *(
        f"assert callable(getattr(importlib.import_module({module!r}), {name!r}))"
        for module, name in (h.rsplit(".", 1) for h in (METADATA_HANDLER, CRITERIA_HANDLER))),
        "from contract.records import count_records", "assert count_records(b'1,\"a\\nb\"\\n' * 20_000, False) == (20_000, False)"])
    result = run_alone(["-I", "-c", code], package)
    assert result.returncode == 0, result.stderr


def docker_context(files: list[str]) -> list[str]:
    """The files the .dockerignore lets into the build context: its lines in order, the last
    match deciding; a pattern matches a path or any folder above it, `*` and `?` not crossing a
    `/` (Docker's rules: Go's filepath.Match on the path and its parents)."""
    rules = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]

    def matches(pattern: str, name: str) -> bool:
        regex = re.escape(pattern).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        parts = name.split("/")
        return any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1))

    kept = []
    for name in files:
        included = True
        for rule in rules:
            negated = rule.startswith("!")
            if matches(rule.lstrip("!"), name):
                included = negated
        if included:
            kept.append(name)
    return kept


def test_the_build_context_holds_every_image_file_but_the_dockerfile():
    # A file the code needs (a subpackage, a data file) but the whitelist leaves out would be
    # missing from the image only: the image tag (image_files) would not even notice.
    files = artifacts.image_files(ROOT)
    assert set(files) - set(docker_context(files)) == {"container/Dockerfile"}
    assert docker_context(["container/sub/x.py", "container/data.json", "local/demo.py"]) == []


def test_the_image_files_alone_run_the_job_entrypoint(tmp_path):
    """Run as the image's CMD runs it, on the build context's files only: it gets past every
    import and stops at the first setting."""
    image = shipped(docker_context(artifacts.image_files(ROOT)), tmp_path)
    result = run_alone(["container/main.py"], image)
    assert (result.returncode, result.stderr.strip()) == (2, "invalid setting: BUCKET is required")


def test_image_tag_changes_with_the_code_and_ignores_bytecode(tree):
    before = artifacts.source_hash(tree)
    assert before == artifacts.source_hash(tree) and len(before) == 16
    (tree / "container/__pycache__/main.cpython-311.pyc").write_text("other bytecode")
    (tree / "local/portal.py").write_text("not in the image")
    assert artifacts.source_hash(tree) == before
    (tree / "contract/messages.py").write_text("changed = True\n")
    assert artifacts.source_hash(tree) != before


def test_image_tag_changes_when_a_file_is_renamed(tree):
    before = artifacts.source_hash(tree)
    (tree / "container/main.py").rename(tree / "container/entry.py")
    assert artifacts.source_hash(tree) != before


@pytest.mark.parametrize("runtime, architecture, expected", [
    ("python3.13", "x86_64", "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:40"),
    ("python3.12", "arm64", "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:40"),
])
def test_powertools_layer_arn_matches_the_published_naming(runtime, architecture, expected):
    assert artifacts.powertools_layer_arn("us-east-1", runtime, architecture, 40) == expected
