from __future__ import annotations

from django.conf import settings
from rest_framework import serializers


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=None, trim_whitespace=True)
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=50)

    def validate_q(self, value: str) -> str:
        if len(value) > settings.CHATBOT_MAX_QUERY_CHARS:
            raise serializers.ValidationError(f"Use at most {settings.CHATBOT_MAX_QUERY_CHARS} characters.")
        return value


class SearchResultSerializer(serializers.Serializer):
    url = serializers.CharField(allow_null=True, help_text="None for an uploaded file.")
    title = serializers.CharField()
    heading = serializers.CharField(allow_blank=True)
    snippet = serializers.CharField()
    score = serializers.FloatField(help_text="BM25; only comparable within one query.")


class SearchResponseSerializer(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    results = SearchResultSerializer(many=True)
