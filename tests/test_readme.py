"""The README's "Try the API" commands work as written, against a running server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conversations.models import Message
from tests.conftest import require
from tests.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def readme_block(heading: str) -> str:
    section = (ROOT / "README.md").read_text().split(f"## {heading}\n", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_try_the_api_commands_work_as_written(live_server):
    require(shutil.which("curl") is not None, "curl")
    script = readme_block("Try the API").replace("http://127.0.0.1:8000", live_server.url)

    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.replace("}{", "}\n{").replace("}event:", "}\nevent:")  # curl adds no newlines
    documents = [json.loads(line) for line in re.findall(r"^\{.*\}$", lines, re.M)]
    assert [d["success"] for d in documents] == [True] * 4  # create, store, read, chat
    stored, read, chat = documents[1], documents[2], documents[3]
    assert stored["message"]["content"] == "What is AI risk?"
    assert [m["content"] for m in read["messages"]] == ["What is AI risk?"]
    assert chat["session_id"] == stored["session_id"]
    assert "event: done" in result.stdout  # the streamed turn finished
    assert Message.objects.filter(session__public_id=stored["session_id"]).count() == 5
