"""Import paths for every test run under CPython, set here once.

- the repository root, for `tests.*`;
- firmware/, whose modules import each other by bare name as they do on the board;
- tests/firmware/, for the firmware test helpers and the CPython stand-ins of
  MicroPython's cryptolib and framebuf.

Under MicroPython the same two directories come from MICROPYPATH (tests/micropython.py).
No firmware module is named like a standard or installed module (test_setup.py holds
that), so putting firmware/ first shadows nothing the host code imports.
"""
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
FIRMWARE_TESTS = ROOT / "tests" / "firmware"

for _path in (ROOT, FIRMWARE, FIRMWARE_TESTS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# firmware modules import const from MicroPython's own module, which CPython lacks
from tests.cpython_shims import install_micropython_module  # noqa: E402

install_micropython_module()

import os  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402

from tests import postgres_server  # noqa: E402


@pytest.fixture(scope="session")
def pg_databases():
    """Databases on the test PostgreSQL server, all dropped when the run ends; a test
    that asks for it is skipped (one line, the reason) when there is no server."""
    postgres_server.require()
    databases = postgres_server.Databases()
    yield databases
    databases.drop_all()


@pytest.fixture
def pg_url(pg_databases):
    """A new, empty PostgreSQL database of this test's own, dropped after it."""
    url = pg_databases.new()
    yield url
    pg_databases.drop(url)


_pg_skips = []


def pytest_runtest_logreport(report):
    if report.skipped and postgres_server.SKIP_PREFIX in str(report.longrepr):
        _pg_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    # CI has a server (.ci/run starts it): a PostgreSQL test that skipped there is a failure
    if _pg_skips and os.environ.get("CI") == "true":
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter:
            reporter.write_line(f"FAILED: {len(_pg_skips)} PostgreSQL tests were skipped "
                                f"under CI ({postgres_server.unavailable()})", red=True)
        session.exitstatus = 1


# ---- the issuer's demo database on either backend (tests/host/issuer and the tests
# that import its fixtures) ------------------------------------------------------------

@pytest.fixture
def backend():
    """The issuer's database: SQLite, unless tests/host/issuer/conftest.py
    parametrizes it (a module marked both_backends runs on PostgreSQL too)."""
    return "sqlite"


@pytest.fixture(scope="session")
def pg_demo_template(pg_databases, tmp_path_factory):
    """A PostgreSQL database with the demo data, copied for each test, and its key store."""
    from posbridge.issuer import Ledger
    from posbridge.issuer.demo_data import load_demo
    url = pg_databases.new()
    keys = tmp_path_factory.mktemp("pg-template") / "issuer.keys"
    ledger = Ledger.create(url, keys=keys, force=True)
    load_demo(ledger)
    ledger.close()
    return url, keys


@pytest.fixture
def location(backend, request, tmp_path):
    """(database, key store) of the demo data for this test: a copy of the SQLite file
    (db_path, beside it), or a PostgreSQL database of the test's own."""
    if backend == "sqlite":
        path = request.getfixturevalue("db_path")
        from posbridge.issuer.keystore import path_beside
        return path, path_beside(path)
    databases = request.getfixturevalue("pg_databases")
    template, template_keys = request.getfixturevalue("pg_demo_template")
    url = databases.new(template=template)
    request.addfinalizer(lambda: databases.drop(url))
    keys = tmp_path / "pg-issuer.keys"
    shutil.copy(template_keys, keys)
    return url, keys


@pytest.fixture
def open_ledger(location):
    """Ledger.open of this test's demo database; its `location`: (database, keys)."""
    from posbridge.issuer import Ledger

    def open_it():
        return Ledger.open(*location)
    open_it.location = location
    return open_it


@pytest.fixture(autouse=True)
def keep_root_logging():
    """`posbridge` sets up logging for the whole process (basicConfig(force=True), with
    its masking filter) whenever a test runs its CLI in process: put the root logger
    back as it was, for the tests after that read their log records (caplog)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
