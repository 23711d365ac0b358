"""The production settings, plus the benchmark's ceiling views (``bench.urls``).

Everything else comes from the environment exactly as in production, so what is
measured is what is deployed.
"""

from chatbot.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
