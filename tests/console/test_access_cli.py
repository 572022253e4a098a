"""``pasarela operators``: accounts of the console from the command line, each
merchant's with the root ``--merchant``; ``--json``, exit codes (0 done, 1 failed,
2 called wrong), passwords from a prompt or standard input and never echoed or
stored in clear, every change in the operator audit log. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pasarela.cli import main
from pasarela.store import Store
from pasarela.web.console_auth import verify_password


CONFIG = """
[store]
url = "{url}"
[plugins]
modules = ["pasarela.testing.fake"]
[providers.fake]
max_retries = 0
[merchants.a.providers.fake]
max_retries = 0
"""
PASSWORD = "colibrí-de-los-andes-42"


@pytest.fixture
def setup(tmp_path: Path, store_url: str) -> tuple[Path, Store]:
    path = tmp_path / "pasarela.toml"
    path.write_text(CONFIG.format(url=store_url), encoding="utf-8")
    store = Store(store_url, upgrade=True)
    yield path, store
    store.close()


def run(path: Path, *args: str, merchant: str | None = None, stdin: str | None = None
        ) -> Result:
    root = ["--config", str(path), *(["--merchant", merchant] if merchant else [])]
    return CliRunner().invoke(main, [*root, "operators", *args], input=stdin)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_list_set_role_and_remove(setup) -> None:
    path, store = setup
    added = as_json(run(path, "add", "rosa", "--role", "viewer", "--password-stdin", "--json",
                        stdin=PASSWORD + "\n"))
    assert added == {"merchant": "", "name": "rosa", "role": "viewer"}
    listed = as_json(run(path, "list", "--json"))
    assert [(o["name"], o["role"]) for o in listed["operators"]] == [("rosa", "viewer")]
    assert verify_password(store.operator_password_hash("", "rosa"), PASSWORD)
    taken = run(path, "add", "rosa", "--role", "admin", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert taken.exit_code == 1
    assert "operator 'rosa' exists already" in taken.output
    assert as_json(run(path, "set-role", "rosa", "admin", "--json"))["role"] == "admin"
    assert store.operator_account("", "rosa")["role"] == 3
    shown = run(path, "list")
    assert shown.exit_code == 0
    assert "rosa" in shown.stdout
    assert "admin" in shown.stdout
    assert as_json(run(path, "remove", "rosa", "--json"))["removed"] is True
    assert store.operator_accounts("") == []
    again = run(path, "remove", "rosa")
    assert again.exit_code == 1
    assert "no operator 'rosa'" in again.output


@pytest.mark.parametrize("args", [
    ["add", "rosa", "--role", "boss", "--password-stdin"],           # no such role
    ["add", "Rosa Q", "--role", "viewer", "--password-stdin"],       # not a name
    ["add", "rosa", "--role", "viewer", "--password-stdin"],         # too short (stdin)
    ["add", "rosa", "--password-stdin"],                             # no role
    ["set-role", "rosa", "boss"],
])
def test_usage_errors_exit_2_and_write_nothing(setup, args) -> None:
    path, store = setup
    result = run(path, *args, stdin="short\n")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert "short" not in result.output.replace("too short", "")
    assert store.operator_accounts("") == []


def test_a_prompted_password_is_asked_twice_and_never_echoed(setup) -> None:
    path, store = setup
    result = run(path, "add", "ana", "--role", "operator", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert result.output.count("Password") == 1
    assert "Repeat for confirmation" in result.output
    assert verify_password(store.operator_password_hash("", "ana"), PASSWORD)


def test_passwd_and_sign_out_everywhere_move_the_session_generation(setup) -> None:
    path, store = setup
    assert run(path, "add", "ana", "--role", "operator", "--password-stdin",
               stdin=PASSWORD + "\n").exit_code == 0
    assert store.operator_account("", "ana")["generation"] == 0
    assert as_json(run(path, "sign-out-everywhere", "ana", "--json"))["sessions_ended"]
    assert store.operator_account("", "ana")["generation"] == 1
    new = "otra-clave-mucho-mas-larga"
    changed = run(path, "passwd", "ana", "--password-stdin", stdin=new + "\n")
    assert changed.exit_code == 0, changed.output
    assert store.operator_account("", "ana")["generation"] == 2
    stored = store.operator_password_hash("", "ana")
    assert verify_password(stored, new)
    assert not verify_password(stored, PASSWORD)
    missing = run(path, "passwd", "nadie", "--password-stdin", stdin=new + "\n")
    assert missing.exit_code == 1
    assert run(path, "sign-out-everywhere", "nadie").exit_code == 1
    log = as_json(run(path, "log", "--json"))
    assert [(e["operator"], e["action"], e["target"]) for e in log["entries"]] == [
        ("@cli", "operator_passwd", "ana"), ("@cli", "sign_out_everywhere", "ana"),
        ("@cli", "operator_add", "ana")]
    assert PASSWORD not in json.dumps(log)


def test_the_root_merchant_option_scopes_every_command(setup) -> None:
    path, store = setup
    assert run(path, "add", "berta", "--role", "admin", "--password-stdin", merchant="a",
               stdin=PASSWORD + "\n").exit_code == 0
    assert [o["name"] for o in store.operator_accounts("a")] == ["berta"]
    assert store.operator_accounts("") == []
    assert as_json(run(path, "list", "--json"))["operators"] == []
    mine = as_json(run(path, "list", "--json", merchant="a"))
    assert (mine["merchant"], [o["name"] for o in mine["operators"]]) == ("a", ["berta"])
    assert run(path, "remove", "berta").exit_code == 1                 # not the implicit's
    assert run(path, "set-role", "berta", "viewer").exit_code == 1
    assert store.operator_account("a", "berta")["role"] == 3
    unknown = run(path, "list", merchant="zz")
    assert unknown.exit_code == 1
    assert "no merchant 'zz'" in unknown.output
    assert [e["action"] for e in as_json(run(path, "log", "--json", merchant="a"))[
        "entries"]] == ["operator_add"]
    assert as_json(run(path, "log", "--json"))["entries"] == []
