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
