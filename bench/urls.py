"""The production URLs plus two constant views: the ceiling a turn is compared with.

``/bench/ceiling`` is a DRF ``APIView`` answering a constant body, routed through the
same middleware, server and settings as ``/api/chat``: everything a turn pays except
the turn itself. ``/bench/ceiling-plain`` is a bare Django ``JsonResponse`` from an
async view, the cheapest answer this stack can give.
"""

from django.http import JsonResponse
from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from chatbot.urls import urlpatterns as production_urlpatterns

CONSTANT = {"success": True, "answer": "constant"}


class CeilingView(APIView):
    def get(self, request):
        return Response(CONSTANT)


async def ceiling_plain(request):
    return JsonResponse(CONSTANT)


urlpatterns = [
    path("bench/ceiling", CeilingView.as_view()),
    path("bench/ceiling-plain", ceiling_plain),
    *production_urlpatterns,
]
