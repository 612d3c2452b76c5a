"""The IT person's script that registers the app in Microsoft Entra ID
(docs/it/register-m365-app.sh) asks for what the sign-in code uses: the same delegated
permissions as microsoft.SCOPES, the loopback redirect the browser sign-in comes back to,
a public client; and prints the two settings the chair needs.

The Azure CLI cannot reach Entra from here, so ``az`` is a stand-in on PATH that answers
the look-ups the script makes from a small table and records every call; the script
itself runs for real, in bash."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.signin.loopback import LoopbackReceiver
from newsletter.signin.microsoft import SCOPES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "it" / "register-m365-app.sh"
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
GRAPH = "00000003-0000-0000-c000-000000000000"
TENANT = "11111111-2222-3333-4444-555555555555"
APP_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

# The stand-in for `az`: answers from the table in AZ_TABLE, logs argv to AZ_LOG, and
# keeps a copy of the permissions file given to `ad app create`.
FAKE_AZ = r"""
import json, os, re, sys
args = sys.argv[1:]
with open(os.environ["AZ_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\n")
table = json.loads(os.environ["AZ_TABLE"])
def opt(name):
    return args[args.index(name) + 1] if name in args else ""
if args[:2] == ["account", "show"]:
    print(table["tenant"])
elif args[:3] == ["ad", "sp", "show"]:
    value = re.search(r"value=='([^']+)'", opt("--query")).group(1)
    print(table["scopes"].get(opt("--id"), {}).get(value, ""))
elif args[:3] == ["ad", "app", "list"]:
    print(table.get("existing", ""))
elif args[:3] == ["ad", "app", "create"]:
    with open(opt("--required-resource-accesses")[1:], encoding="utf-8") as f:
        manifest = f.read()
    with open(os.environ["AZ_MANIFEST"], "w", encoding="utf-8") as f:
        f.write(manifest)
    print(table["app_id"])
elif args[:3] == ["ad", "sp", "create"] or args[:4] == ["ad", "app", "permission", "admin-consent"]:
    print("{}")
else:
    sys.exit("unexpected az call: " + " ".join(args))
"""

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _scope_names() -> list[str]:
    """The permission names behind the code's scopes (``https://outlook.office.com/X``)."""
    return [scope.rsplit("/", 1)[1] for scope in SCOPES]


def _run(tmp_path: Path, table: dict, *args: str) -> tuple[subprocess.CompletedProcess, list]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(f"#!{sys.executable}\n{FAKE_AZ}", encoding="utf-8")
    az.chmod(az.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "az.log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AZ_TABLE": json.dumps(table),
        "AZ_LOG": str(log),
        "AZ_MANIFEST": str(tmp_path / "manifest.json"),
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, calls


def _ids(names: list[str], prefix: str) -> dict[str, str]:
    return {name: f"{prefix}-{i}" for i, name in enumerate(names)}


def test_the_script_is_valid_bash() -> None:
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_it_registers_a_public_client_with_the_scopes_the_code_asks_for(tmp_path: Path) -> None:
    oidc = ["offline_access", "openid", "profile"]
    table = {
        "tenant": TENANT,
        "app_id": APP_ID,
        "scopes": {EXCHANGE: _ids(_scope_names(), "exo"), GRAPH: _ids(oidc, "graph")},
    }
    done, calls = _run(tmp_path, table)
    assert done.returncode == 0, done.stderr

    # What the chair puts in .env, as the last lines.
    assert done.stdout.rstrip().splitlines()[-2:] == [
        f"NEWSLETTER_OAUTH_CLIENT_ID={APP_ID}",
        f"NEWSLETTER_OAUTH_TENANT={TENANT}",
    ]
    create = next(call for call in calls if call[:3] == ["ad", "app", "create"])
    assert create[create.index("--sign-in-audience") + 1] == "AzureADMyOrg"
    assert create[create.index("--is-fallback-public-client") + 1] == "true"
    # The browser sign-in comes back to http://localhost:PORT, which Entra matches with a
    # registered http://localhost (any port).
    redirect = create[create.index("--public-client-redirect-uris") + 1]
    with LoopbackReceiver("localhost") as receiver:
        assert receiver.redirect_uri.startswith(redirect + ":")

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    wanted = {
        EXCHANGE: {f"exo-{i}" for i in range(len(SCOPES))},
        GRAPH: {"graph-0", "graph-1", "graph-2"},
    }
    assert {m["resourceAppId"]: {a["id"] for a in m["resourceAccess"]} for m in manifest} == wanted
    assert all(a["type"] == "Scope" for m in manifest for a in m["resourceAccess"])
    # Its service principal is made; consent is left to the administrator unless asked.
    assert ["ad", "sp", "create", "--id", APP_ID] in calls
    assert not any(call[:4] == ["ad", "app", "permission", "admin-consent"] for call in calls)


def test_a_permission_exchange_does_not_expose_is_taken_from_microsoft_graph(
    tmp_path: Path,
) -> None:
    names = _scope_names()
    graph = {**_ids(["offline_access", "openid", "profile"], "graph"), names[1]: "graph-imap"}
    table = {
        "tenant": TENANT,
        "app_id": APP_ID,
        "scopes": {EXCHANGE: {names[0]: "exo-smtp"}, GRAPH: graph},
    }
    done, _ = _run(tmp_path, table, "--grant-admin-consent")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    by_resource = {m["resourceAppId"]: {a["id"] for a in m["resourceAccess"]} for m in manifest}
    assert by_resource[EXCHANGE] == {"exo-smtp"}
    assert "graph-imap" in by_resource[GRAPH]
    assert "granted for the whole organisation" in done.stdout


def test_it_stops_before_registering_a_second_app_of_the_same_name(tmp_path: Path) -> None:
    oidc = ["offline_access", "openid", "profile"]
    table = {
        "tenant": TENANT,
        "app_id": APP_ID,
        "existing": "99999999-0000-0000-0000-000000000000",
        "scopes": {EXCHANGE: _ids(_scope_names(), "exo"), GRAPH: _ids(oidc, "graph")},
    }
    done, calls = _run(tmp_path, table)
    assert done.returncode == 1
    assert "99999999-0000-0000-0000-000000000000" in done.stderr
    assert not any(call[:3] == ["ad", "app", "create"] for call in calls)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_the_script_is_shellcheck_clean() -> None:
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
