"""GET /api/kb/search: what the knowledge base finds for a query, for staff and servers
checking what the bot will answer from."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.permissions import has_server_api_key
from knowledge.search import search
from knowledge.serializers import SearchQuerySerializer, SearchResponseSerializer


class StaffOrServer(BasePermission):
    """The site's pages are public, but what the index holds, and how it ranks, is not
    for visitors to probe."""

    def has_permission(self, request, view) -> bool:
        return request.user.is_staff or has_server_api_key(request)


class SearchView(APIView):
    permission_classes = [StaffOrServer]

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True, description="The query, as a visitor would ask it."),
            OpenApiParameter("limit", int, description="Results, 1 to 50 (default 10)."),
        ],
        responses={200: SearchResponseSerializer},
    )
    def get(self, request):
        query = SearchQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        hits = search(query.validated_data["q"], limit=query.validated_data["limit"])
        results = [
            {"url": hit.url, "title": hit.title, "heading": hit.heading, "snippet": hit.snippet, "score": hit.score}
            for hit in hits
        ]
        return Response({"success": True, "results": results})
