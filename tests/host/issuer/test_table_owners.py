"""Each table of the issuer's database has one module that writes it: the SQL strings
of every posbridge module are read, and an INSERT, UPDATE or DELETE of a table anywhere
but in its owner fails here. Reading is free."""
import ast
import re
from pathlib import Path

import pytest

from posbridge.issuer import Ledger

PACKAGE = Path(__file__).resolve().parents[3] / "host_tools" / "posbridge"

OWNERS = {
    "schema_version": "issuer/ledger.py",     # and the migrations (no keys: keystore.py)
    "accounts": "issuer/ledger.py",          # balances move only by postings
    "transactions": "issuer/ledger.py",      # the journal
    "ledger_entries": "issuer/ledger.py",    # the postings
    "cards": "issuer/cards.py",
    "cardholders": "issuer/preferences.py",
    "alert_kinds": "issuer/preferences.py",
    "alert_channels": "issuer/preferences.py",
    "account_events": "issuer/account_events.py",
    "outbox": "issuer/outbox.py",
    "terminals": "issuer/terminals.py",      # the registry
    "terminal_keys": "issuer/terminals.py",  # its keys and their KSN counters
}

# (FOR UPDATE is a row lock, not a write)
_WRITE = re.compile(r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|(?<!FOR )UPDATE(?:\s+OR\s+\w+)?"
                    r"|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)
_SCHEMA = re.compile(r"\b(?:CREATE|ALTER|DROP)\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\b", re.IGNORECASE)


def _sql_strings(path: Path):
    """The string literals of a module (f-strings' literal parts included), docstrings
    left out: they are prose, not SQL."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            yield node.value


def _writers() -> "dict[str, set[str]]":
    """table -> the modules (relative to posbridge/) whose strings write it."""
    writers = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        for text in _sql_strings(path):
            for table in _WRITE.findall(text):
                writers.setdefault(table.lower(), set()).add(module)
    return writers


WRITERS = _writers()


def test_every_table_has_an_owner(tmp_path):
    ledger = Ledger.create(tmp_path / "issuer.sqlite")
    try:
        tables = {r[0] for r in ledger.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        ledger.close()
    assert tables == set(OWNERS)


@pytest.mark.parametrize("table", sorted(OWNERS))
def test_only_the_owner_writes_its_table(table):
    # the owner's own write is found too, so the scan is not passing on nothing
    assert WRITERS.get(table) == {OWNERS[table]}


def test_nothing_writes_a_table_that_does_not_exist():
    # a table named in a write but in no schema: a typo, or a table without an owner
    assert set(WRITERS) <= set(OWNERS), set(WRITERS) - set(OWNERS)


def test_only_the_ledger_makes_the_schema():
    makers = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
              if any(_SCHEMA.search(text) for text in _sql_strings(path))}
    assert makers == {"issuer/ledger.py"}
