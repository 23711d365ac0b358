"""Helpers for tests of the Django admin's pages."""

from __future__ import annotations


def listed_ids(response) -> set[str]:
    """The public ids of the sessions a changelist response shows."""
    return {session.public_id for session in response.context["cl"].result_list}
