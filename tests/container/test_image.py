"""The harvester image's build files: lint-clean, non-root, pinned, and in step with the code."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from components.config import PipelineConfig

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "container" / "Dockerfile"
IMAGE_REQUIREMENTS = ROOT / "container" / "requirements.txt"


IMAGE_REQUIREMENTS_IN = ROOT / "container" / "requirements.in"
PIN = re.compile(r"^([A-Za-z0-9][\w.-]*)==([\w.]+)", re.M)


def pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (hash lines and comments aside)."""
    return {name.lower(): version for name, version in PIN.findall(path.read_text())}


def hashed_pins(path: Path) -> dict[str, list[str]]:
    """name -> the sha256 hashes that follow its pin (pip-compile's `name==v \\` + `--hash=` lines)."""
    hashes: dict[str, list[str]] = {}
    name = None
    for line in path.read_text().splitlines():
        pinned = PIN.match(line)
        if pinned:
            name = pinned.group(1).lower()
            hashes[name] = []
        elif line.strip().startswith("--hash=") and name is not None:
            hashes[name].append(line.strip().removesuffix("\\").strip())
        elif not line.startswith(" "):
            name = None
    return hashes


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_the_image_runs_as_a_non_root_user_from_a_pinned_slim_base():
    text = DOCKERFILE.read_text()
    # Pinned to a patch release and a digest, of the Python the Lambdas run (and CI tests on).
    base = re.search(r"^FROM python:(3\.\d+)\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$", text, re.M)
    assert base and f"python{base.group(1)}" == PipelineConfig().lambda_runtime
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert 'CMD ["python3", "/workspace/container/main.py"]' in text and "WORKDIR /workspace" in text
    # The code is readable by that user whatever modes the checkout gave it (COPY keeps them).
    copied = text.index("COPY container/ container/")
    assert text.index("RUN chmod -R a+rX,go-w contract container") > copied


def test_image_requirements_are_pinned_and_match_the_tested_versions():
    image, tested = pins(IMAGE_REQUIREMENTS), pins(ROOT / "requirements.txt")
    assert all(re.fullmatch(r"[\w.]+", version) for version in image.values())
    for name in ("sodapy", "requests", "urllib3", "boto3", "numpy"):
        assert image[name] == tested[name]
    # The lock was made from requirements.in as it is now (`make lock-image` after editing it).
    wanted = pins(IMAGE_REQUIREMENTS_IN)
    assert set(wanted) == {"sodapy", "requests", "urllib3", "boto3", "numpy"}
    assert {name: image[name] for name in wanted} == wanted


def test_every_image_requirement_is_installed_only_by_its_hashes():
    hashes = hashed_pins(IMAGE_REQUIREMENTS)
    assert set(hashes) == set(pins(IMAGE_REQUIREMENTS)) and len(hashes) >= 13  # every dependency, pinned
    for name, lines in hashes.items():
        assert lines and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in lines), name
    install = next(line for line in DOCKERFILE.read_text().splitlines() if "pip install" in line)
    assert "--require-hashes" in install and "-r container/requirements.txt" in install


def modules_of(distributions: set[str]) -> set[str]:
    """The top-level modules the given (installed) distributions provide."""
    normal = {re.sub(r"[-_.]+", "-", name).lower() for name in distributions}
    return {module for module, owners in importlib.metadata.packages_distributions().items()
            if any(re.sub(r"[-_.]+", "-", owner).lower() in normal for owner in owners)}


def test_the_image_holds_every_third_party_module_the_job_imports():
    # What container/requirements.txt installs, not what the dev venv happens to hold.
    provided = modules_of(set(pins(IMAGE_REQUIREMENTS)))
    assert {"sodapy", "requests", "urllib3", "boto3", "botocore", "numpy"} <= provided
    local = {"container", "contract"}
    imported = set()
    for source in [*(ROOT / "container").glob("*.py"), *(ROOT / "contract").glob("*.py")]:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - local - {"__future__"}
    assert third_party <= provided, third_party - provided


def test_the_build_context_is_a_whitelist_of_the_jobs_code():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert set(lines[1:]) == {"!container/*.py", "!container/requirements.txt", "!contract/*.py"}
