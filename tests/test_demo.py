"""`python -m bot demo` plays the reference outage and drafts the reference postmortem."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from pathlib import Path

import pytest

from bot.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared/reference/postmortem-example.md"


def sections(markdown: str) -> dict[str, str]:
    """Heading text (without #, trailing colon or period) -> the body under it."""
    # The reference writes `###Duration:` without the space CommonMark needs.
    markdown = re.sub(r"^(#{1,6})(?=[^\s#])", r"\1 ", markdown, flags=re.MULTILINE)
    parts = re.split(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE)
    return {
        parts[i].strip().rstrip(":.").strip(): parts[i + 1].strip()
        for i in range(1, len(parts) - 1, 2)
    }


def bullets(body: str) -> list[str]:
    return [line[2:].strip() for line in body.splitlines() if line.startswith("* ")]


def plain(text: str) -> str:
    """Markdown escapes removed, spaces folded: what a reader sees."""
    return " ".join(re.sub(r"\\([\\`*_{}\[\]()#+\-.!|~<>$&])", r"\1", text).split())


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("demo-out")
    transcript = io.StringIO()
    path = asyncio.run(run_demo(out, stream=transcript))
    assert path == out / "INC-1-postmortem.md"
    text = transcript.getvalue()
    # The transcript reads as a conversation: people's commands and what the bot did.
    assert "dana: /incident declare sev2" in text
    assert "bot  creates #inc-20261125-1-checkout-slow-and-failing-after-product-launch" in text
    assert "bot  uploads the postmortem draft" in text
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def reference() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def test_same_sections_in_the_same_order(produced: str, reference: str) -> None:
    assert produced.startswith("# Postmortem: INC-1 — ")  # level-1 title, then:
    assert list(sections(produced))[1:] == list(sections(reference))[1:]


def test_duration_impact_and_root_cause_match(produced: str, reference: str) -> None:
    ours, theirs = sections(produced), sections(reference)
    assert ours["Duration"].splitlines()[0] == theirs["Duration"].splitlines()[0]
    assert "1 hour and 30 minutes, from 10:15 AM to 11:45 AM PST" in ours["Duration"]
    impact = re.search(r"Impact: (.+?)(?:Root Cause:|$)", theirs["Duration"], re.S)
    cause = re.search(r"Root Cause: (.+)$", theirs["Duration"], re.S)
    assert impact and cause
    assert f"Impact: {impact.group(1).strip()}" in plain(ours["Duration"])
    assert f"Root Cause: {cause.group(1).strip()}" in plain(ours["Duration"])


def test_every_reference_timeline_line_is_there_in_order(produced: str, reference: str) -> None:
    ours = [plain(line) for line in bullets(sections(produced)["Timeline"])]
    position = -1
    for line in bullets(sections(reference)["Timeline"]):
        found = [i for i, mine in enumerate(ours) if mine.startswith(line)]
        assert found, f"missing timeline line: {line}"
        assert found[0] > position, f"out of order: {line}"
        position = found[0]


def test_root_cause_and_resolution_paragraphs_match(produced: str, reference: str) -> None:
    ours = [plain(p) for p in sections(produced)["Root Cause and Resolution"].split("\n\n")]
    theirs = [plain(p) for p in sections(reference)["Root Cause and Resolution"].split("\n\n")]
    assert ours == theirs


def test_measures_and_tasks_match(produced: str, reference: str) -> None:
    ours, theirs = sections(produced), sections(reference)
    measures = sections(produced)["Corrective and Preventative Measures"]
    assert [plain(b) for b in bullets(measures)] == bullets(
        theirs["Corrective and Preventative Measures"]
    )
    tasks = [plain(b) for b in bullets(ours["Specific tasks"])]
    expected = bullets(theirs["Specific tasks"])
    assert len(tasks) == len(expected)
    for mine, wanted in zip(tasks, expected, strict=True):
        assert mine.startswith(wanted), (mine, wanted)
        assert "owner " in mine  # owners shown by name


def test_python_m_bot_demo_writes_the_draft(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--out", str(tmp_path / "out")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "INC-1-postmortem.md").read_text().startswith("# Postmortem")
    assert "demo finished in" in result.stderr
    assert "Traceback" not in result.stderr
