"""What the API accepts and returns.

Text and metadata are checked here, before anything is written: PostgreSQL cannot
store NUL characters or lone surrogates, so letting them through would turn a bad
request into a server error halfway through a write.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.exceptions import MessageTooLong
from conversations.feedback import COMMENT_MAX_CHARS
from conversations.models import AnswerStatus, Channel, Feedback, Message, Rating, Role, Session

# How the API names a rating: words, not the stored +1/-1.
RATING_NAMES = {Rating.HELPFUL: "up", Rating.NOT_HELPFUL: "down"}
RATINGS = {name: rating for rating, name in RATING_NAMES.items()}


def check_storable_text(value: str) -> str:
    if "\x00" in value:
        raise serializers.ValidationError("Text may not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("Text must be valid Unicode (no lone surrogates).") from None
    return value


def check_metadata(value) -> dict:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Metadata must be a JSON object.")
    _check_depth_and_text(value, depth=1)
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > settings.CHATBOT_MAX_METADATA_BYTES:
        raise serializers.ValidationError(
            f"Metadata is {size} bytes; at most {settings.CHATBOT_MAX_METADATA_BYTES} are allowed."
        )
    return value


def _check_depth_and_text(value, *, depth: int) -> None:
    if isinstance(value, (dict, list)) and depth > settings.CHATBOT_MAX_METADATA_DEPTH:
        raise serializers.ValidationError(
            f"Metadata may nest at most {settings.CHATBOT_MAX_METADATA_DEPTH} levels deep."
        )
    if isinstance(value, dict):
        for key, item in value.items():
            check_storable_text(key)
            _check_depth_and_text(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_depth_and_text(item, depth=depth + 1)
    elif isinstance(value, str):
        check_storable_text(value)


def check_query_text(value: str) -> str:
    """What a visitor types: not blank, and not longer than the configured limit."""
    if not value.strip():
        raise serializers.ValidationError("The message is empty.")
    if len(value) > settings.CHATBOT_MAX_QUERY_CHARS:
        raise MessageTooLong(length=len(value), limit=settings.CHATBOT_MAX_QUERY_CHARS)
    return value


class StrictCharField(serializers.CharField):
    """A JSON string only: DRF would turn 0 or 1.5 into "0" and "1.5"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StorableTextField(StrictCharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators.append(check_storable_text)


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.JSONField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", dict)
        super().__init__(**kwargs)
        self.validators.append(check_metadata)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only: DRF would also take 0, 1, "yes" and "on"."""

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        self.fail("invalid", input=data)


class FeedbackSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(choices=list(RATINGS), help_text="up: helpful; down: not helpful.")
    comment = serializers.CharField(allow_blank=True, help_text="What the visitor added, if anything.")
    updated_at = serializers.DateTimeField()


class MessageSerializer(serializers.ModelSerializer):
    author_name = serializers.SerializerMethodField(
        help_text="The staff member who wrote it (an assistant message); null for the visitor's and the bot's."
    )
    feedback = serializers.SerializerMethodField(
        help_text="The visitor's feedback on a bot's answer; null when there is none (and on every other message)."
    )

    class Meta:
        model = Message
        fields = ["id", "seq", "role", "content", "metadata", "channel", "author_name", "feedback", "created_at"]
        read_only_fields = fields

    def get_author_name(self, message) -> str | None:
        return message.author_name or None

    @extend_schema_field(FeedbackSerializer(allow_null=True))
    def get_feedback(self, message) -> dict | None:
        return feedback_data(message.known_feedback())


class FeedbackRequestSerializer(serializers.Serializer):
    rating = serializers.ChoiceField(
        choices=list(RATINGS), allow_null=True, help_text="up (helpful), down (not helpful), or null to withdraw it."
    )
    comment = StorableTextField(
        max_length=COMMENT_MAX_CHARS,
        required=False,
        allow_blank=True,
        default="",
        help_text="Optional; replaces the earlier comment (absent: none).",
    )

    def validate(self, data: dict) -> dict:
        if data["rating"] is None and data["comment"]:
            raise serializers.ValidationError({"comment": ["A comment needs a rating."]})
        return data


class FeedbackGivenSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    session_id = serializers.CharField()
    message_id = serializers.IntegerField()
    feedback = FeedbackSerializer(allow_null=True, help_text="As stored now; null once withdrawn.")


class LiveStatusSerializer(serializers.Serializer):
    handled_by = serializers.CharField(
        allow_null=True, help_text="The staff member answering instead of the bot; null while the bot answers."
    )
    waiting = serializers.BooleanField(help_text="The visitor asked for a person and nobody has taken over yet.")


class HandoffSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    session_id = serializers.CharField()
    status = LiveStatusSerializer(help_text="Who answers the conversation now; waiting until a person takes over.")


class SessionCreateSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=Channel.choices, default=Channel.API)
    metadata = MetadataField()


class SessionCreatedSerializer(serializers.ModelSerializer):
    """The answer to POST /api/session/create, as the integration guide expects it."""

    success = serializers.SerializerMethodField()
    session_id = serializers.CharField(source="public_id")

    class Meta:
        model = Session
        fields = ["success", "session_id", "created_at", "expires_at"]

    def get_success(self, session) -> bool:
        return True


class SessionRotatedSerializer(SessionCreatedSerializer):
    """The answer to POST /api/session/<id>/rotate: the conversation under its new id;
    the old id is now unknown."""


class SessionSerializer(serializers.ModelSerializer):
    session_id = serializers.CharField(source="public_id", read_only=True)
    title = StorableTextField(max_length=80, required=False, allow_blank=True)
    source = serializers.ChoiceField(choices=Channel.choices, default=Channel.API)
    metadata = MetadataField()
    message_count = serializers.IntegerField(source="last_seq", read_only=True)

    class Meta:
        model = Session
        fields = [
            "session_id",
            "title",
            "source",
            "metadata",
            "message_count",
            "created_at",
            "last_activity_at",
            "expires_at",
        ]
        read_only_fields = ["created_at", "last_activity_at", "expires_at"]


class SessionUpdateSerializer(SessionSerializer):
    """A session's title and metadata may change; where it began may not."""

    source = serializers.ChoiceField(choices=Channel.choices, read_only=True)

    def update(self, session, validated_data):
        """Writes the changed fields alone, and only while the session still has the id
        it was read by: a whole-row save would put back an id rotated away meanwhile
        (and a ``last_seq`` a concurrent turn moved on). ``DoesNotExist`` if it has gone."""
        current = Session.objects.filter(pk=session.pk, public_id=session.public_id)
        if not (current.update(**validated_data) if validated_data else current.exists()):
            raise Session.DoesNotExist("The session was deleted, or its id was rotated.")
        for name, value in validated_data.items():
            setattr(session, name, value)
        return session


class MessageCreateSerializer(serializers.Serializer):
    message = StorableTextField(max_length=None)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.USER)
    metadata = MetadataField()
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.API)

    def validate_message(self, value: str) -> str:
        return check_query_text(value)


class PageQuerySerializer(serializers.Serializer):
    before = serializers.IntegerField(required=False, min_value=1)
    limit = serializers.IntegerField(required=False, min_value=1)

    def validate_limit(self, value: int) -> int:
        return min(value, settings.CHATBOT_PAGE_SIZE_MAX)


class FeedQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        required=False, min_value=0, help_text="Send the messages with a larger seq (Last-Event-ID wins)."
    )


class MessagePageSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    session_id = serializers.CharField()
    messages = MessageSerializer(many=True)
    has_more = serializers.BooleanField()
    next_before = serializers.IntegerField(
        allow_null=True, help_text="Pass as ?before= to get the page before this one."
    )
    status = LiveStatusSerializer(help_text="Who answers the conversation now.")


class MessageCreatedSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    session_id = serializers.CharField()
    message = MessageSerializer()


class ChatRequestSerializer(serializers.Serializer):
    query = StorableTextField(max_length=None)
    session_id = StrictCharField(required=False, allow_null=True, allow_blank=True)
    client_message_id = StrictCharField(
        required=False,
        allow_null=True,
        validators=[RegexValidator(r"^[A-Za-z0-9._:-]{1,64}$", "Use 1 to 64 letters, digits or . _ : -")],
        help_text="Idempotency key: a retry with the same id returns the stored turn.",
    )
    stream = StrictBooleanField(default=False)
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.API)
    language = serializers.ChoiceField(
        choices=[code for code, _ in settings.LANGUAGES],
        required=False,
        allow_null=True,
        help_text="The visitor's language (one of LANGUAGES): the model is told to answer in it.",
    )

    def validate_query(self, value: str) -> str:
        return check_query_text(value)


class ChatTurnMessagesSerializer(serializers.Serializer):
    user = MessageSerializer()
    assistant = MessageSerializer(allow_null=True, help_text="null when answer_status is with_staff.")


class CitationSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The number the answer writes as [n], from 1.")
    title = serializers.CharField()
    url = serializers.CharField(allow_null=True, help_text="None for an uploaded file.")
    heading = serializers.CharField(allow_blank=True)
    snippet = serializers.CharField(allow_blank=True)


class ChatResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    session_id = serializers.CharField(source="session.public_id")
    answer = serializers.CharField()
    citations = CitationSerializer(many=True, help_text="The sources the answer cites, numbered as in its text.")
    answer_status = serializers.ChoiceField(
        choices=[status.value for status in AnswerStatus],
        help_text=(
            "no_answer: the site's pages hold no answer to the question (and strict mode said so); "
            "with_staff: a person has taken the conversation over, so the message was stored and the "
            "answer is empty (their reply arrives on the live feed)."
        ),
    )
    offline = serializers.BooleanField(help_text="True when the built-in offline responder answered.")
    replayed = serializers.BooleanField(help_text="True when this repeats a stored turn.")
    messages = serializers.SerializerMethodField()

    def get_messages(self, result) -> ChatTurnMessagesSerializer:
        return ChatTurnMessagesSerializer({"user": result.user_message, "assistant": result.assistant_message}).data


# The hot paths (a chat turn, a page of messages) build their answers as plain dicts:
# DRF's nested serializers rebuild their fields on every call, which cost more than the
# turn's queries. The serializers above describe the same shapes for the OpenAPI schema,
# and the schema-conformance fuzz test (tests/test_fuzz.py) holds the two together.


def feedback_data(feedback: Feedback | None) -> dict | None:
    if feedback is None:
        return None
    return {"rating": RATING_NAMES[feedback.rating], "comment": feedback.comment, "updated_at": feedback.updated_at}


def message_data(message: Message) -> dict:
    return {
        "id": message.pk,
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "metadata": message.metadata,
        "channel": message.channel,
        "author_name": message.author_name or None,
        "feedback": feedback_data(message.known_feedback()),
        "created_at": message.created_at,
    }


def message_page_data(session: Session, messages: list[Message], has_more: bool) -> dict:
    return {
        "success": True,
        "session_id": session.public_id,
        "messages": [message_data(m) for m in messages],
        "has_more": has_more,
        "next_before": messages[0].seq if has_more else None,
        "status": session.live_status(),
    }


def chat_turn_data(result) -> dict:
    """The answer to POST /api/chat, and the ``done`` event of a streamed one."""
    return {
        "success": True,
        "session_id": result.session.public_id,
        "answer": result.answer,
        "citations": result.citations,
        "answer_status": result.answer_status,
        "offline": result.offline,
        "replayed": result.replayed,
        "messages": {
            "user": message_data(result.user_message),
            "assistant": message_data(result.assistant_message) if result.assistant_message else None,
        },
    }


class WidgetConfigSerializer(serializers.Serializer):
    """What the widget learns from the server before it shows a reply."""

    success = serializers.BooleanField(default=True)
    link_hosts = serializers.ListField(
        child=serializers.CharField(),
        help_text="Hosts that links in assistant messages may go to; any other URL is shown as text.",
    )
    handoff = serializers.BooleanField(help_text="Whether the widget offers a person (POST /api/session/<id>/handoff).")
    language = serializers.ChoiceField(
        choices=[code for code, _ in settings.LANGUAGES],
        help_text="The language chosen from ?lang= (else CHATBOT_LANGUAGE); send it with each chat turn.",
    )
    direction = serializers.ChoiceField(choices=["ltr", "rtl"], help_text="The language's writing direction.")
    catalog = serializers.DictField(
        child=serializers.CharField(),
        help_text=(
            "The widget's strings in that language, keyed by their English text; empty for English. "
            "A string missing here is shown in English."
        ),
    )
