"""`python -m bot playbooks simulate` as a team runs it in review and in CI: the same bytes on
every machine, `playbooks check`'s own messages for a broken file, one line for a wrong name."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
BROKEN = ROOT / "tests" / "playbooks_broken"


def clean_env(**values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DATABASE_", "PLAYBOOKS_", "INCIDENT_", "TZ"))
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(values)
    return env


async def run(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out, err


def simulate(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    status = main(["playbooks", "simulate", *args])
    captured = capsysbinary.readouterr()
    return status, captured.out.decode(), captured.err.decode()


async def test_the_same_input_gives_the_same_bytes_in_any_time_zone(tmp_path: Path) -> None:
    args = ["playbooks", "simulate", str(ROOT / "playbooks"), "--service", "payments"]
    args += ["--severity", "sev1", "--ack", "payments-oncall@7m", "--update-every", "25m"]
    outputs = []
    for tz in ("UTC", "Pacific/Kiritimati", "America/St_Johns"):
        env = clean_env(TZ=tz, INCIDENT_TIMEZONE=tz, LANG="C", LC_ALL="C")
        for form in ("text", "json"):
            status, out, err = await run(*args, "--format", form, env=env, cwd=tmp_path)
            assert status == 0, err
            assert err == b""
            outputs.append((form, out))
    texts = {out for form, out in outputs if form == "text"}
    jsons = {out for form, out in outputs if form == "json"}
    assert len(texts) == 1 and len(jsons) == 1
    text = texts.pop().decode()
    assert text.startswith(
        "playbook checkout: service payments is in its match.services and sev1 meets its "
        "min_severity sev4\n"
    )
    assert (
        "+00:00  tier 1 at declaration: page payments-oncall by PagerDuty (routing key from "
        "PD_PAYMENTS_KEY)\n" in text
    )
    assert "+07:00  payments-oncall acknowledges (--ack payments-oncall@7m): escalation stops" in (
        text
    )


def test_a_broken_directory_gets_exactly_playbooks_checks_messages(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    checked = main(["playbooks", "check", str(BROKEN)])
    check = capsysbinary.readouterr()
    status, out, err = simulate(capsysbinary, monkeypatch, str(BROKEN), "--playbook", "database")
    assert checked == status == 1
    assert out == check.out.decode() and out.count("\n") > 10
    assert err == check.err.decode()
    assert "Traceback" not in out + err


def test_an_unknown_playbook_is_one_line_naming_those_that_exist(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = simulate(
        capsysbinary, monkeypatch, str(ROOT / "playbooks"), "--playbook", "databse"
    )
    assert status == 1 and out == ""
    assert err == (
        f"no playbook named `databse` in {ROOT / 'playbooks'}: checkout, database, default, "
        "security\n"
    )


def test_wrong_options_get_one_clear_line_and_no_traceback(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    where = str(ROOT / "playbooks")
    status, out, err = simulate(
        capsysbinary, monkeypatch, where, "--playbook", "database", "--ack", "dba@5m"
    )
    assert status == 2 and out == ""
    assert err == (
        "--ack names dba, not a role of playbook database (its roles: commander, ops, comms)\n"
    )
    for wrong in (
        ["--ack", "ops"],
        ["--ack", "ops@soon"],
        ["--for", "0s"],
        ["--for", "90d"],
        ["--severity", "p1"],
        ["--update-every", "often"],
    ):
        with pytest.raises(SystemExit) as exited:
            simulate(capsysbinary, monkeypatch, where, "--playbook", "database", *wrong)
        assert exited.value.code == 2
        err = capsysbinary.readouterr().err.decode()
        assert "error:" in err and "Traceback" not in err, wrong
    with pytest.raises(SystemExit):
        simulate(capsysbinary, monkeypatch, where)  # neither --playbook nor --service
    assert "one of the arguments --playbook --service is required" in (
        capsysbinary.readouterr().err.decode()
    )


def test_a_service_no_playbook_covers_without_a_default_says_so(
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    (tmp_path / "db.yaml").write_text("name: db\nmatch: {services: [postgres]}\n")
    status, out, err = simulate(capsysbinary, monkeypatch, str(tmp_path), "--service", "kafka")
    assert (status, err) == (0, "")
    assert out == (
        "no playbook: no playbook lists service kafka and there is no default playbook: "
        "nothing is paged, no reminders\n"
    )


def test_the_directory_defaults_to_playbooks_dir(
    capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYBOOKS_DIR", str(ROOT / "playbooks"))
    status, out, _ = simulate(
        capsysbinary, monkeypatch, "--service", "auth", "--severity", "sev2", "--for", "20m"
    )
    assert status == 0
    assert out.splitlines()[0] == (
        "playbook security: service auth is in its match.services and sev2 meets its "
        "min_severity sev4"
    )
    assert (
        "+00:00  tier 1 at declaration: page siem by webhook (URL from SIEM_WEBHOOK_URL, "
        "signed with SIEM_WEBHOOK_SECRET)\n" in out
    )
