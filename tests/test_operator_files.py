"""What an operator installs from: the Slack app manifest, the Procfile, .env.example."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.config import Settings
from bot.slack.ids import CallbackId, CommandName

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT.parent / "shared/slack/manifest-schema/schemas/manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "manifest.yaml").read_text())


def test_manifest_is_valid_against_slacks_schema(manifest: dict) -> None:  # type: ignore[type-arg]
    if not SCHEMA.exists():
        pytest.skip("shared/ is not beside the checkout")
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))


def test_manifest_declares_what_the_app_listens_to(manifest: dict) -> None:  # type: ignore[type-arg]
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == [CommandName.INCIDENT]
    shortcuts = {s["callback_id"] for s in manifest["features"]["shortcuts"]}
    assert shortcuts == {CallbackId.DECLARE_SHORTCUT}
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"reaction_added", "reaction_removed", "member_joined_channel"} <= events
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_manifest_grants_the_scopes_of_every_method_the_bot_calls(manifest: dict) -> None:  # type: ignore[type-arg]
    methods_dir = ROOT / "bot/emulator/methods"
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    source = "\n".join(
        p.read_text() for p in (ROOT / "bot").rglob("*.py") if "emulator" not in p.parts
    )
    missing = {}
    for path in methods_dir.glob("*.json"):
        method = path.stem
        python_name = method.replace(".", "_")
        if f".{python_name}(" not in source:
            continue
        scopes = set(json.loads(path.read_text()).get("scope", {}).get("bot", []))
        if scopes and not scopes & granted:
            missing[method] = sorted(scopes)
    assert missing == {}


def test_procfile_has_release_web_and_worker() -> None:
    entries = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()
    )
    assert "db upgrade" in entries["release"]
    assert "serve" in entries["web"]
    assert "worker" in entries["worker"]


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    lines = [line for line in text.splitlines() if "=" in line and not line.startswith("#")]
    names = {line.split("=", 1)[0] for line in lines}
    assert set(Settings.model_fields) <= names
