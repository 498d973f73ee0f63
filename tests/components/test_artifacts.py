"""What ships: the Lambda package's files, the image's content-hash tag, the Powertools layer ARN."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from components import artifacts
from components.config import ROOT


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
