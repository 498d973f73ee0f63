"""What gets built from the repository: the Lambda package, the image tag, the Powertools layer's
SSM parameter name (or its ARN, when a layer number is pinned).

Pure functions over the file tree (no Pulumi engine needed except to wrap the archive), so tests
can check exactly which files ship.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

import pulumi

from components.config import ROOT

# The Lambda package: the handlers and the contract they share with the harvester (one definition
# of every name that crosses a process boundary).
LAMBDA_PACKAGES = ("handlers", "contract")
# The image is built from these folders (the .dockerignore whitelist) plus the Dockerfile inside.
IMAGE_SOURCES = ("container", "contract")
POWERTOOLS_ACCOUNT = "017000801446"  # AWS-published Powertools layers live in this account.
_SKIPPED_PARTS = {"__pycache__", "tests", ".pytest_cache"}


def _files(folders: Iterable[str], root: Path, suffixes: tuple[str, ...] | None) -> list[Path]:
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or _SKIPPED_PARTS.intersection(relative.parts):
                continue
            if path.suffix in (".pyc", ".pyo") or (suffixes and path.suffix not in suffixes):
                continue
            found.append(relative)
    return found


def lambda_files(root: Path = ROOT) -> list[str]:
    """Archive paths of the Lambda package: only .py files of handlers/ and contract/."""
    return [p.as_posix() for p in _files(LAMBDA_PACKAGES, root, (".py",))]


def lambda_archive(root: Path = ROOT) -> pulumi.AssetArchive:
    return pulumi.AssetArchive({name: pulumi.FileAsset(str(root / name)) for name in lambda_files(root)})


# The lock's input: the image installs the lock (requirements.txt) it was resolved into.
NOT_IN_IMAGE = ("container/requirements.in",)


def image_files(root: Path = ROOT) -> list[str]:
    return [p.as_posix() for p in _files(IMAGE_SOURCES, root, None) if p.as_posix() not in NOT_IN_IMAGE]


def source_hash(root: Path = ROOT) -> str:
    """Content hash of what the image is built from: the image tag, so a tag names its sources.

    Paths are hashed with the contents so a rename is a change too; 16 hex digits are plenty to
    tell builds apart while staying readable in the console.
    """
    digest = hashlib.sha256()
    for name in image_files(root):
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def powertools_parameter(runtime: str, architecture: str, release: str) -> str:
    """The public SSM parameter holding the layer ARN of one Powertools release, e.g.
    /aws/service/powertools/python/x86_64/python3.11/3.37.0 (Powertools' documented naming)."""
    return f"/aws/service/powertools/python/{architecture}/{runtime}/{release}"


def powertools_layer_arn(region: str, runtime: str, architecture: str, version: int) -> str:
    """The AWS-published layer for this runtime/architecture, e.g. ...PythonV3-python311-x86_64:40:
    used when `powertoolsLayerVersion` pins the number (a release whose SSM parameter is missing)."""
    flavour = runtime.replace(".", "")  # python3.11 -> python311
    return (f"arn:aws:lambda:{region}:{POWERTOOLS_ACCOUNT}:layer:"
            f"AWSLambdaPowertoolsPythonV3-{flavour}-{architecture}:{version}")
