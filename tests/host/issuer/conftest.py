import shutil

import pytest

from posbridge.issuer import Faults, Issuer, Ledger, Policy
from posbridge.issuer.demo_data import load_demo
from posbridge.issuer.keystore import path_beside

from .request_builder import NOW, TerminalRequestBuilder

ISSUER_NOW = NOW + 125    # the issuer's clock, 125 s after the board's: 2026-11-22 16:02:05 UTC+8


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory):
    """The demo database and its key store (issuer.keys beside it), made once."""
    path = tmp_path_factory.mktemp("template") / "issuer.sqlite"
    ledger = Ledger.create(path)
    load_demo(ledger)
    ledger.close()
    return path


@pytest.fixture
def db_path(demo_template, tmp_path):
    path = tmp_path / "var" / "issuer.sqlite"
    path.parent.mkdir()
    shutil.copy(demo_template, path)
    shutil.copy(path_beside(demo_template), path_beside(path))   # mode 0600 kept
    return path


BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    # a module marked both_backends runs its issuer tests on SQLite and on PostgreSQL
    if "backend" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_backends") is not None
        metafunc.parametrize("backend", BACKENDS if both else BACKENDS[:1])


@pytest.fixture(scope="session")
def pg_demo_template(pg_databases, tmp_path_factory):
    """A PostgreSQL database with the demo data, copied for each test, and its key store."""
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
    def open_it():
        return Ledger.open(*location)
    open_it.location = location
    return open_it


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_issuer(open_ledger, sleeps):
    made = []

    def make(policy=None, faults=None):
        issuer = Issuer(open_ledger(), policy or Policy(), faults or Faults(),
                        clock=lambda: ISSUER_NOW, sleep=sleeps.append)
        made.append(issuer)
        return issuer
    yield make
    for issuer in made:
        issuer.close()


@pytest.fixture
def issuer(make_issuer):
    return make_issuer()


@pytest.fixture
def terminal():
    return TerminalRequestBuilder()
