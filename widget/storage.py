"""Static files as production serves them: the widget's own scripts and styles minified.

The widget's budget (12 KB gzipped for what one tag brings into a customer's page) is
spent on what is served, so comments and indentation stay in the sources and are
removed as ``collectstatic`` collects them, before the files are hashed and compressed.
rjsmin and rcssmin only drop what does not change meaning (no renaming), so the served
code reads like the source. Third-party files (the admin's, the API docs') are left as
their packages ship them.
"""

from __future__ import annotations

from pathlib import Path

from rcssmin import cssmin
from rjsmin import jsmin
from whitenoise.storage import CompressedManifestStaticFilesStorage

# Our own static files: static/widget/ (STATICFILES_DIRS).
MINIFIED_DIRECTORY = "widget/"


def minified(name: str, text: str) -> str:
    """``text`` of the file ``name``, minified if it is a script or a stylesheet."""
    if name.endswith(".js"):
        return jsmin(text)
    if name.endswith(".css"):
        return cssmin(text)
    return text


def is_minified(name: str) -> bool:
    return name.startswith(MINIFIED_DIRECTORY) and name.endswith((".js", ".css"))


class MinifiedManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's hashed, compressed storage, minifying our .js and .css first: the
    hashes, the gzip and Brotli copies and the unhashed widget.js are all of the
    minified text."""

    def post_process(self, paths, dry_run=False, **options):
        if not dry_run:
            for name in paths:
                if is_minified(name):
                    path = Path(self.path(name))
                    path.write_text(minified(name, path.read_text(encoding="utf-8")), encoding="utf-8")
        yield from super().post_process(paths, dry_run=dry_run, **options)
