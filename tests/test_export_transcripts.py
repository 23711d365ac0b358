"""Transcript export: JSON Lines and CSV, from the admin (selected or all filtered
sessions, staff only) and from ``manage.py export_transcripts``; what is written parses
back to what the database holds, and no cell runs as a spreadsheet formula."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import AsyncClient, Client
from django.utils import timezone

from conversations.export import FIELDS
from conversations.models import Feedback, Message, MessageDraft, Rating, Role, Session

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/conversations/session/"


@pytest.fixture
def transcripts(responder_client):
    """Three sessions: plain questions, an answer with citations and feedback, a staff
    reply, text in several scripts, and text that a spreadsheet would run as a formula."""
    first = Session.objects.create(source="widget")
    first.add_message(MessageDraft(role=Role.USER, content="Do you ship tents to Zürich?", channel="widget"))
    answer = first.add_message(
        MessageDraft(
            role=Role.ASSISTANT,
            content="Yes [1], in 3 days.\nSee the shipping page.",
            metadata={
                "answer_status": "answered",
                "citations": [
                    {"id": 1, "title": "Shipping", "url": "https://shop.example/shipping"},
                    {"id": 2, "title": "Uploaded terms", "url": None},
                ],
                "usage": {"prompt_tokens": 120},
            },
        )
    )
    Feedback.objects.create(message=answer, rating=Rating.NOT_HELPFUL, comment='Too short, "vague"')
    second = Session.objects.create(source="page")
    second.add_message(MessageDraft(role=Role.USER, content='=HYPERLINK("http://evil.example","click")'))
    second.add_message(MessageDraft(role=Role.ASSISTANT, content="-", metadata={"answer_status": "no_answer"}))
    second.add_message(MessageDraft(role=Role.USER, content="@SUM(A1:A2), +1, and 日本語 / العربية / 🚚"))
    second.add_message(MessageDraft(role=Role.ASSISTANT, content="I can help.", author=responder_client.user))
    third = Session.objects.create(source="api")
    third.add_message(MessageDraft(role=Role.USER, content="Hello, anyone there?"))
    return [first, second, third]


def stored_rows(sessions) -> list[dict]:
    """What the database holds, read independently of the export, in its order."""
    rows = []
    for session in sorted(sessions, key=lambda s: s.pk):
        for message in Message.objects.filter(session=session).order_by("seq"):
            feedback = Feedback.objects.filter(message=message).first()
            citations = message.metadata.get("citations", [])
            rows.append(
                {
                    "session_id": session.public_id,
                    "seq": message.seq,
                    "role": message.role,
                    "content": message.content,
                    "created_at": message.created_at,
                    "channel": message.channel,
                    "author_name": message.author_name,
                    "answer_status": message.metadata.get("answer_status"),
                    "citations": [c["url"] for c in citations if c.get("url")],
                    "feedback_rating": feedback.rating if feedback else None,
                    "feedback_comment": feedback.comment if feedback else None,
                }
            )
    return rows


def parsed_jsonl(data: bytes) -> list[dict]:
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
    for row in rows:
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    return rows


def parsed_csv(data: bytes) -> list[dict]:
    """The CSV read back as a spreadsheet would be undone: the quote that guards a
    formula-like cell removed, numbers and empty cells typed again."""
    assert data.startswith("\ufeff".encode())  # spreadsheets then read it as UTF-8
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    assert tuple(reader.fieldnames) == FIELDS
    rows = []
    for raw in reader:
        row = {name: value[1:] if value.startswith("'") else value for name, value in raw.items()}
        row["seq"] = int(row["seq"])
        row["created_at"] = datetime.fromisoformat(row["created_at"])
        row["citations"] = row["citations"].split()
        row["answer_status"] = row["answer_status"] or None
        row["feedback_rating"] = int(row["feedback_rating"]) if row["feedback_rating"] else None
        row["feedback_comment"] = row["feedback_comment"] if raw["feedback_rating"] else None
        rows.append(row)
    return rows


def export_action(client, action: str, sessions=(), **extra):
    data = {"action": action, "_selected_action": [s.pk for s in sessions], "index": 0, **extra}
    return client.post(CHANGELIST, data)


def downloaded(response) -> bytes:
    return b"".join(response.streaming_content)


# --- The admin action ------------------------------------------------------------------


@pytest.mark.parametrize(("action", "parse"), [("export_jsonl", parsed_jsonl), ("export_csv", parsed_csv)])
def test_staff_download_the_selected_sessions_transcripts(staff_client, transcripts, action, parse):
    chosen = transcripts[:2]

    response = export_action(staff_client, action, chosen)

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Disposition"].startswith('attachment; filename="transcripts-')
    assert parse(downloaded(response)) == stored_rows(chosen)


def test_the_jsonl_download_is_one_json_object_a_line_in_utf8(staff_client, transcripts):
    response = export_action(staff_client, "export_jsonl", transcripts)

    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert "日本語 / العربية / 🚚".encode() in downloaded(response)


def test_the_csv_download_cannot_run_a_formula_in_a_spreadsheet(staff_client, transcripts):
    response = export_action(staff_client, "export_csv", transcripts)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    contents = {row["content"] for row in csv.DictReader(io.StringIO(downloaded(response).decode("utf-8-sig")))}
    assert '\'=HYPERLINK("http://evil.example","click")' in contents
    assert "'-" in contents
    assert "'@SUM(A1:A2), +1, and 日本語 / العربية / 🚚" in contents
    assert not any(content.startswith(("=", "+", "-", "@")) for content in contents)


def test_all_filtered_sessions_can_be_exported_at_once(staff_client, transcripts):
    response = staff_client.post(
        f"{CHANGELIST}?source__exact=page",
        {"action": "export_jsonl", "select_across": 1, "index": 0, "_selected_action": [transcripts[1].pk]},
    )

    assert parsed_jsonl(downloaded(response)) == stored_rows([transcripts[1]])


def test_a_session_is_exported_whole_however_many_batches_it_takes(staff_client, settings, monkeypatch):
    from conversations import export

    session = Session.objects.create()
    for number in range(25):
        session.add_message(MessageDraft(role=Role.USER, content=f"message {number}"))
    monkeypatch.setattr(export, "BATCH_SIZE", 4)
    monkeypatch.setattr(export, "SESSIONS_PER_SLICE", 1)
    Session.objects.create().add_message(MessageDraft(role=Role.USER, content="elsewhere"))

    response = export_action(staff_client, "export_jsonl", Session.objects.all())

    assert parsed_jsonl(downloaded(response)) == stored_rows(Session.objects.all())


def test_only_staff_who_may_view_sessions_can_export(client, member, transcripts, django_user_model):
    anonymous = export_action(client, "export_jsonl", transcripts)
    client.force_login(member)
    signed_in_member = export_action(client, "export_jsonl", transcripts)
    unprivileged = Client()
    unprivileged.force_login(django_user_model.objects.create_user("intern", password="pw", is_staff=True))
    staff_without_permission = export_action(unprivileged, "export_jsonl", transcripts)

    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    assert signed_in_member.status_code == 302 and "/admin/login/" in signed_in_member["Location"]
    assert staff_without_permission.status_code == 403


@pytest.fixture
def request_thread_closed():
    """After the test, the connection of the thread the ASGI handler ran the view on
    closed, so that the test database can be dropped."""
    yield
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_download_is_streamed_from_a_database_thread(staff_client, transcripts, request_thread_closed):
    async def download() -> tuple[int, bytes, bool]:
        client = AsyncClient()
        client.cookies = staff_client.cookies
        response = await export_action(client, "export_jsonl", transcripts)
        return response.status_code, b"".join([chunk async for chunk in response.streaming_content]), response.is_async

    status, data, is_async = asyncio.run(download())

    assert status == 200
    assert is_async
    assert parsed_jsonl(data) == stored_rows(transcripts)


# --- The command ------------------------------------------------------------------------


def written_on(day: str, message: Message) -> None:
    moment = timezone.make_aware(datetime.fromisoformat(f"{day}T12:00:00"))
    Message.objects.filter(pk=message.pk).update(created_at=moment)


@pytest.fixture
def dated(transcripts):
    """The transcripts' messages spread over 1, 2 and 3 March 2026."""
    messages = list(Message.objects.order_by("session_id", "seq"))
    for index, message in enumerate(messages):
        written_on(f"2026-03-0{1 + index % 3}", message)
    return messages


def run_export(tmp_path, *args: str) -> bytes:
    output = tmp_path / "out"
    call_command("export_transcripts", *args, "--output", str(output))
    return output.read_bytes()


def rows_written_on(*days: str) -> list[dict]:
    return [row for row in stored_rows(Session.objects.all()) if row["created_at"].date().isoformat() in days]


@pytest.mark.parametrize(("file_format", "parse"), [("jsonl", parsed_jsonl), ("csv", parsed_csv)])
def test_the_command_exports_the_messages_written_between_since_and_until(tmp_path, dated, file_format, parse):
    data = run_export(tmp_path, "--since", "2026-03-02", "--until", "2026-03-02", "--format", file_format)

    assert parse(data) == rows_written_on("2026-03-02")
    assert parse(data)  # not vacuous


def test_without_until_the_command_exports_everything_since(tmp_path, dated):
    data = run_export(tmp_path, "--since", "2026-03-02")

    assert parsed_jsonl(data) == rows_written_on("2026-03-02", "2026-03-03")


def test_the_command_refuses_a_malformed_or_backwards_range(tmp_path, dated):
    with pytest.raises(CommandError, match="not a date"):
        call_command("export_transcripts", "--since", "March 2nd")
    with pytest.raises(CommandError, match="before --since"):
        call_command("export_transcripts", "--since", "2026-03-03", "--until", "2026-03-01")


def test_a_range_before_any_message_gives_an_empty_export(tmp_path, dated):
    assert run_export(tmp_path, "--since", "2020-01-01", "--until", "2020-01-31") == b""
    header = run_export(tmp_path, "--since", "2020-01-01", "--until", "2020-01-31", "--format", "csv")
    assert header.decode("utf-8-sig").strip() == ",".join(FIELDS)


def test_messages_of_the_last_day_count_until_its_end(tmp_path, dated):
    late = Message.objects.order_by("pk").last()
    Message.objects.filter(pk=late.pk).update(
        created_at=timezone.make_aware(datetime(2026, 3, 4)) - timedelta(microseconds=1)
    )

    data = parsed_jsonl(run_export(tmp_path, "--since", "2026-03-03", "--until", "2026-03-03"))

    assert (late.seq, late.session.public_id) in {(row["seq"], row["session_id"]) for row in data}
