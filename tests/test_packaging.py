"""The package as a user installs it: the sdist and the wheel built once per session, each installed
into a fresh venv of its own.

- the wheel installs nothing outside ``tacn/`` and its dist-info, so PyPI's ``validators`` installs
  beside it and uninstalls again without touching tacn;
- ``tacn --version``, ``tacn demo`` and ``tacn validate`` on a shipped example work from either;
- the sdist holds the tests with their fixtures, the examples, LICENSE, scripts and docs, and a
  focused part of its own suite passes from the unpacked folder (``make test-sdist`` runs all of it);
- a feature whose extra is not installed says which one in one line and exits 3.

The tests that build or install are marked ``slow`` (they still run in ``make test``).

The venvs are made ``--without-pip`` and filled by this interpreter's pip (``pip --python``, as
pipx does), with ``--no-compile``: pip's cache makes the installs quick, compiling would double them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VERSION = PROJECT["version"]
DIST_INFO = f"tacn-{VERSION}.dist-info"
PYPI_VALIDATORS = "validators==0.36.0"  # the PyPI package whose name tacn's validators/ folder shares
# fast tests that need conftest.py and the fixture modules: proof that the sdist can test itself
SDIST_SUBSET = ["tests/test_extjson.py", "tests/test_cli.py",  # test_cli: the console script, fast start
                "tests/test_freshness.py",  # market_fixtures, sync_fixtures
                "tests/test_clean_render.py"]  # clean_fixtures
INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class Artifacts:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Venv:
    root: Path
    home: Path  # TACN_HOME for the commands run in it

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def tacn(self) -> Path:
        return self.root / "bin" / "tacn"

    def env(self, **extra: str) -> dict[str, str]:
        """The user's environment: nothing of this test run's venv, tacn settings or pytest."""
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("TACN_", "PYTEST_", "MONGODB_", "REDIS_"))
               and name not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "JWT_SECRET", "TUSHARE_TOKEN")}
        env["PATH"] = f"{self.root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return {**env, "TACN_HOME": str(self.home), "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}

    def run(self, *args, cwd: Path | None = None, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or self.home, env=self.env(**env))

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        proc = self.run(sys.executable, "-m", "pip", "--python", self.python, *args, timeout=INSTALL_TIMEOUT_S)
        assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc


def make_venv(root: Path, *requirements: str) -> Venv:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    home = root.parent / f"{root.name}-home"
    home.mkdir()
    venv = Venv(root, home)
    venv.pip("install", "--quiet", "--no-compile", *requirements)
    return venv


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Artifacts:
    """The sdist, and the wheel built from it (python -m build), once per session."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Artifacts(out / f"tacn-{VERSION}.tar.gz", out / f"tacn-{VERSION}-py3-none-any.whl")


@dataclass(frozen=True)
class SdistRun:
    venv: Venv
    tests: subprocess.CompletedProcess  # SDIST_SUBSET, run from the unpacked sdist


def install_and_test_sdist(sdist: Path, root: Path, unpacked: Path) -> SdistRun:
    """A fresh venv with tacn built from the sdist and its test extra, then the sdist's own tests run
    from its unpacked folder in that venv."""
    venv = make_venv(root, f"{sdist}[test]")
    with tarfile.open(sdist) as tar:
        tar.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # 3.11.4+
    tests = venv.run(venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SDIST_SUBSET,
                     cwd=unpacked / f"tacn-{VERSION}", timeout=INSTALL_TIMEOUT_S)
    return SdistRun(venv, tests)


@pytest.fixture(scope="session")
def sdist_job(artifacts, tmp_path_factory) -> Iterator[Future[SdistRun]]:
    """install_and_test_sdist in a thread: it overlaps with the wheel's install and tests (mostly one
    process waiting for another), which keeps this module's share of `make test` down."""
    root, unpacked = tmp_path_factory.mktemp("sdist") / "venv", tmp_path_factory.mktemp("unpacked")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdist") as pool:
        yield pool.submit(install_and_test_sdist, artifacts.sdist, root, unpacked)


@pytest.fixture(scope="session")
def wheel_venv(artifacts, sdist_job, tmp_path_factory) -> Venv:
    """A fresh venv with the wheel and its runtime dependencies only (no extra). The sdist's install
    starts first, in the background."""
    return make_venv(tmp_path_factory.mktemp("wheel") / "venv", str(artifacts.wheel))


@pytest.fixture(scope="session")
def sdist_venv(sdist_job) -> Venv:
    return sdist_job.result(timeout=2 * INSTALL_TIMEOUT_S).venv


@functools.cache
def shipped_examples(venv: Venv) -> dict[str, Path]:
    """The installed tacn.examples files (inside the venv, not this repository)."""
    proc = venv.run(venv.python, "-c", "import json; from tacn.pipelines.demo import example_paths; "
                    "print(json.dumps(example_paths()))")
    assert proc.returncode == 0, proc.stderr
    paths = {key: Path(path) for key, path in json.loads(proc.stdout).items()}
    assert all(path.is_file() and path.is_relative_to(venv.root) for path in paths.values()), paths
    return paths


def validate_shipped_sample(venv: Venv) -> dict:
    """`tacn validate` on the shipped CSV: its one 2025-10-23 row fails the gate (exit 1)."""
    proc = venv.run(venv.tacn, "validate", shipped_examples(venv)["quotes_csv"], "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    failing = {rule["name"]: rule["failing"] for rule in report["rules"] if rule["failing"]}
    assert failing == {"trade_date_iso": 1}, failing
    return report


# -- the artifacts -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_wheel_installs_nothing_outside_the_tacn_namespace(artifacts):
    with zipfile.ZipFile(artifacts.wheel) as wheel:
        record = wheel.read(f"{DIST_INFO}/RECORD").decode()
        names = set(wheel.namelist())
    paths = [line.rsplit(",", 2)[0] for line in record.splitlines() if line]
    assert paths and {p.split("/")[0] for p in paths} == {"tacn", DIST_INFO}  # no top-level validators/, …
    assert names == set(paths)
    # tacn itself is a namespace (no __init__.py of its own); each of its parts is a regular package
    assert "tacn/__init__.py" not in names
    for part in ("cli", "pipelines", "validators", "migrations", "examples"):
        assert f"tacn/{part}/__init__.py" in names
    assert {"tacn/examples/akshare_quotes_sample.csv", "tacn/examples/demo.env"} <= names
    assert f"{DIST_INFO}/licenses/LICENSE" in names
    with zipfile.ZipFile(artifacts.wheel) as wheel:
        metadata = wheel.read(f"{DIST_INFO}/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    # runtime dependencies only; the dev servers' websockets is an extra
    runtime = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert runtime and not any(re.search(r"\b(pytest|hypothesis|websockets|mongomock|ruff|polars)\b", line)
                               for line in runtime)
    assert 'Requires-Dist: websockets>=13; extra == "dev"' in metadata


@pytest.mark.slow
def test_sdist_holds_tests_fixtures_examples_license_scripts_and_docs(artifacts):
    with tarfile.open(artifacts.sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    expected = {"LICENSE", "README.md", "pyproject.toml", "Makefile", "MANIFEST.in"}
    for folder, pattern in (("tests", "*.py"), ("examples", "*"), ("scripts", "*"), ("docs", "**/*")):
        expected |= {str(p.relative_to(REPO)) for p in (REPO / folder).glob(pattern)
                     if p.is_file() and "__pycache__" not in p.parts}
    assert {"tests/conftest.py", "tests/redis_fixtures.py", "examples/akshare_quotes_sample.csv"} <= expected
    assert expected <= names, sorted(expected - names)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".db"))]
    with tarfile.open(artifacts.sdist) as tar:
        license_text = tar.extractfile(f"tacn-{VERSION}/LICENSE").read().decode()
    assert license_text.startswith("MIT License") and "Copyright (c) 2025-2026 tacn contributors" in license_text


# -- installed from the wheel, then from the sdist -----------------------------------------------------------


@pytest.mark.slow
class TestFromTheWheel:
    """What a user of the wheel runs first; TestFromTheSdist repeats it on the sdist's install."""

    @pytest.fixture
    def installed(self, wheel_venv) -> Venv:
        return wheel_venv

    def test_version_comes_from_pyproject(self, installed):
        proc = installed.run(installed.tacn, "--version")
        assert (proc.returncode, proc.stdout.strip()) == (0, f"tacn {VERSION}")

    def test_demo_seeds_its_store_and_names_the_shipped_examples(self, installed):
        proc = installed.run(installed.tacn, "demo")
        assert proc.returncode == 0, proc.stderr
        assert "Seeded SYNTHETIC demo data into sqlite:///" in proc.stdout
        assert (installed.home / "demo.db").is_file()
        examples = shipped_examples(installed)
        assert f"tacn validate {examples['quotes_csv']}" in proc.stdout
        assert f"--env-file {examples['env_file']}" in proc.stdout

    def test_validate_and_config_check_on_the_shipped_examples(self, installed):
        validate_shipped_sample(installed)
        proc = installed.run(installed.tacn, "config-check", "--offline", "--env-file",
                             shipped_examples(installed)["env_file"])
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_pypi_validators_installs_beside_tacn_and_uninstalls_without_harm(wheel_venv):
    venv = wheel_venv
    venv.pip("install", "--quiet", "--no-compile", PYPI_VALIDATORS)
    try:
        both = venv.run(venv.python, "-c", "import validators, tacn.validators.dates as d; "
                        "print(validators.email('a@b.co') is True, d.__name__)")
        assert both.stdout.split() == ["True", "tacn.validators.dates"], both.stderr
        assert venv.run(venv.tacn, "--version").returncode == 0
        validate_shipped_sample(venv)
    finally:
        venv.pip("uninstall", "--yes", "--quiet", "validators")
    gone = venv.run(venv.python, "-c", "import validators")
    assert gone.returncode == 1 and "ModuleNotFoundError" in gone.stderr  # tacn never provided it
    venv.pip("check")
    validate_shipped_sample(venv)


@pytest.mark.slow
def test_dev_server_without_its_extra_names_it_in_one_line(wheel_venv):
    venv = wheel_venv
    assert venv.run(venv.python, "-c", "import websockets").returncode == 1  # the wheel alone lacks it
    help_ = venv.run(venv.python, "-m", "tacn.pipelines.watch.dev_server", "--help")
    assert help_.returncode == 0 and "usage:" in help_.stdout
    proc = venv.run(venv.python, "-m", "tacn.pipelines.watch.dev_server", "--port", "0", JWT_SECRET="s" * 32)
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        "error: the dev WebSocket server needs the websockets package, which is not installed: "
        "pip install 'tacn[dev]'"]


@pytest.mark.slow
class TestFromTheSdist(TestFromTheWheel):
    @pytest.fixture
    def installed(self, sdist_venv) -> Venv:
        return sdist_venv


@pytest.mark.slow
def test_sdist_runs_its_own_tests(sdist_job):
    """A focused part of the suite (conftest and the fixture modules needed) from the unpacked sdist;
    `make test-sdist` runs the whole of it."""
    proc = sdist_job.result(timeout=2 * INSTALL_TIMEOUT_S).tests
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\d+ passed", summary) and "error" not in summary, summary


# -- this checkout's own install (editable under `make install`) --------------------------------------------


def test_module_entry_points_of_this_install(tmp_path):
    env = {**os.environ, "TACN_HOME": str(tmp_path)}
    version = subprocess.run([sys.executable, "-m", "tacn.cli", "--version"], capture_output=True, text=True,
                             timeout=60, env=env)
    assert (version.returncode, version.stdout.strip()) == (0, f"tacn {VERSION}")
    server = subprocess.run([sys.executable, "-m", "tacn.pipelines.watch.dev_server", "--help"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert server.returncode == 0 and "--port-file" in server.stdout
    from typer.testing import CliRunner

    from tacn.cli.app import app
    from tacn.pipelines.demo import example_paths

    seeded = CliRunner().invoke(app, ["demo", "--json"])
    assert seeded.exit_code == 0 and json.loads(seeded.stdout)["examples"] == example_paths()
    assert all(Path(path).is_file() for path in example_paths().values())


def test_missing_extra_in_this_install_is_one_line_and_exit_3(tmp_path):
    """The same message when websockets cannot be imported here (blocked in the child)."""
    code = ("import runpy, sys; sys.modules['websockets'] = None; sys.argv[1:] = ['--port', '0']; "
            "runpy.run_module('tacn.pipelines.watch.dev_server', run_name='__main__', alter_sys=True)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "JWT_SECRET": "s" * 32, "TACN_HOME": str(tmp_path)})
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("pip install 'tacn[dev]'") and len(proc.stderr.splitlines()) == 1
