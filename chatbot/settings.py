"""Django settings for the chatbot backend.

Every setting an operator may change is read here, from the environment, through the
typed helpers in ``chatbot.env``. With nothing set, the project runs in development
mode on a SQLite file with the offline responder, so it can be tried with no setup.
``.env.example`` lists every variable; the README's configuration table explains them.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_noop

from chatbot.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -----------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    # django.contrib.admin, with the site's own pages (the insight page) beside the models'.
    "conversations.admin_config.ChatbotAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "conversations",
    "knowledge",
    "widget",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "conversations.middleware.NoStoreConversations",
]

ROOT_URLCONF = "chatbot.urls"
WSGI_APPLICATION = "chatbot.wsgi.application"
ASGI_APPLICATION = "chatbot.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# SQLite by default. PostgreSQL (DATABASE_URL=postgres://...) uses psycopg 3 with
# Django's connection pool: a new connection per request costs 4.5x in throughput, and
# the pool bounds connections per process however many request threads there are.

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_health_checks=True,
    )
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        # Writers take the lock at BEGIN, so a read-then-write transaction never fails
        # with "database is locked" when it tries to upgrade; others wait `timeout` s.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not Django's shared in-memory database: threads (streamed turns, the
    # live server) then lock like they do in production, instead of failing at once.
    _db["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"chatbot-test-{os.getpid()}.sqlite3")}
elif _db["ENGINE"] == "django.db.backends.postgresql":
    _db["OPTIONS"] = {
        "options": f"-c statement_timeout={env_int('DATABASE_STATEMENT_TIMEOUT_MS', 5000)}",
    }
    # One test database per test run, so two runs on one machine never share one.
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{os.getpid()}"}
    if env_bool("DATABASE_POOL", True):
        _db["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must not
        _db["OPTIONS"]["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2, minimum=0),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1),
            "timeout": env_float("DATABASE_POOL_TIMEOUT", 3.0),
        }
    else:
        _db["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate-limit counters) --------------------------------------------------------
# With REDIS_URL the counters are shared by every process and host; without it each
# process counts alone, which is fine for a single development server.

REDIS_URL = env_str("REDIS_URL")
# A dead Redis must cost a request milliseconds, not a hang.
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", 0.25)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "chatbot",
            "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth, i18n, static files -----------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
# The languages the widget and /chat are shipped in (locale/), English being the source.
# A visitor gets the widget's data-lang, else their browser's language, else
# CHATBOT_LANGUAGE; the model is told to answer in it. The admin stays in LANGUAGE_CODE.
LANGUAGES = [("en", "English"), ("de", "German"), ("es", "Spanish"), ("fr", "French"), ("ar", "Arabic")]
LOCALE_PATHS = [BASE_DIR / "locale"]
CHATBOT_LANGUAGE = env_str("CHATBOT_LANGUAGE", "en")
if CHATBOT_LANGUAGE not in dict(LANGUAGES):
    raise ImproperlyConfigured(f"CHATBOT_LANGUAGE must be one of {', '.join(dict(LANGUAGES))}.")
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))  # where collectstatic writes
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "widget.storage.MinifiedManifestStaticFilesStorage"
        )
    },
}
# WhiteNoise serves collectstatic's gzip and Brotli copies. Hashed names (widget.3f9a….js)
# are cached for ten years as immutable. Unhashed URLs cannot be: /static/widget/widget.js
# is pasted into customers' pages and must keep its name, so browsers keep it this long,
# then revalidate by ETag (a 304 of a few hundred bytes). An hour means a deploy reaches
# every visitor within the hour. In development every reload fetches the file afresh.
WHITENOISE_MAX_AGE = 0 if DEBUG else env_int("CHATBOT_STATIC_MAX_AGE", 3600, minimum=0)

# --- Security (production) --------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)

# How many reverse proxies (load balancer, CDN) stand in front of the app. Only then is
# X-Forwarded-For / X-Forwarded-Proto believed; by default nobody can spoof them.
CHATBOT_PROXY_COUNT = env_int("CHATBOT_PROXY_COUNT", 0, minimum=0)
if CHATBOT_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Origins (scheme://host[:port]) that may call the API from a browser, frame /chat and
# talk to it with postMessage. One allowlist for all three.
CHATBOT_ALLOWED_ORIGINS = env_list("CHATBOT_ALLOWED_ORIGINS")
# Hosts (example.com, docs.example.com:8443) that links in assistant messages may go to,
# besides those of CHATBOT_ALLOWED_ORIGINS; a link anywhere else is shown as text.
CHATBOT_LINK_HOSTS = [host.lower() for host in env_list("CHATBOT_LINK_HOSTS")]
for _host in CHATBOT_LINK_HOSTS:
    if not re.fullmatch(r"[a-z0-9.-]+(:[0-9]{1,5})?", _host):
        raise ImproperlyConfigured(f"CHATBOT_LINK_HOSTS: {_host!r} is not a host name (no scheme, no path)")

# --- Cross-origin ------------------------------------------------------------------------
# The widget calls /api/ from customers' sites. Only the allowlisted origins may, and
# without cookies: a visitor's access comes from the session id, not from credentials.
# In development with no allowlist, any origin may call, so the demo works at once.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOWED_ORIGINS = CHATBOT_ALLOWED_ORIGINS
CORS_ALLOW_ALL_ORIGINS = DEBUG and not CHATBOT_ALLOWED_ORIGINS
CORS_ALLOW_CREDENTIALS = False
CORS_EXPOSE_HEADERS = ["Retry-After"]  # so the widget can say when to try again
CORS_PREFLIGHT_MAX_AGE = 86400

# --- REST API ---------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["conversations.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "conversations.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Chatbot sessions API",
    "DESCRIPTION": "Server-side chat sessions for a website widget and its full page.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our own static files: works offline
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Channel serves both Session.source and Message.channel: one enum in the schema.
    "ENUM_NAME_OVERRIDES": {"Channel": "conversations.models.Channel"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "conversations.schema.document_errors",
    ],
}

# --- The chatbot ------------------------------------------------------------------------

# Sessions expire after this many idle days; every turn pushes the expiry forward.
CHATBOT_SESSION_TTL_DAYS = env_int("CHATBOT_SESSION_TTL_DAYS", 30, minimum=1)
# A server-side key that may write assistant and system messages (Authorization: Bearer).
CHATBOT_SERVER_API_KEY = env_str("CHATBOT_SERVER_API_KEY")

CHATBOT_MAX_QUERY_CHARS = env_int("CHATBOT_MAX_QUERY_CHARS", 4000, minimum=1)
CHATBOT_MAX_METADATA_BYTES = env_int("CHATBOT_MAX_METADATA_BYTES", 8192, minimum=2)
CHATBOT_MAX_METADATA_DEPTH = env_int("CHATBOT_MAX_METADATA_DEPTH", 5, minimum=1)
CHATBOT_MAX_BODY_BYTES = env_int("CHATBOT_MAX_BODY_BYTES", 64 * 1024, minimum=1024)
# The servers refuse a larger body before it arrives (conversations/bodylimits.py), and
# Django keeps whatever it does read in memory: nothing a client sends reaches the disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = CHATBOT_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = CHATBOT_MAX_BODY_BYTES
CHATBOT_PAGE_SIZE = env_int("CHATBOT_PAGE_SIZE", 50, minimum=1)
CHATBOT_PAGE_SIZE_MAX = env_int("CHATBOT_PAGE_SIZE_MAX", 200, minimum=1)
# The full page /chat: its heading, and the first thing a new conversation shows.
# The defaults are shown in the visitor's language (marked for the catalogs); your own as set.
CHATBOT_PAGE_TITLE = env_str("CHATBOT_PAGE_TITLE", gettext_noop("Chat with us"))
CHATBOT_GREETING = env_str("CHATBOT_GREETING", gettext_noop("Hi! How can I help you today?"))

# Rate limits, as "count/period" (s, m, h, d); an empty value turns one limit off.
# Failing open: see conversations/ratelimits.py for why.
RATELIMIT_FAIL_OPEN = True
CHATBOT_RATELIMIT_ENABLE = env_bool("CHATBOT_RATELIMIT_ENABLE", True)
CHATBOT_RATELIMIT_CHAT_IP = env_str("CHATBOT_RATELIMIT_CHAT_IP", "30/m")
CHATBOT_RATELIMIT_CHAT_SESSION = env_str("CHATBOT_RATELIMIT_CHAT_SESSION", "20/m")
CHATBOT_RATELIMIT_WRITE_IP = env_str("CHATBOT_RATELIMIT_WRITE_IP", "60/m")
CHATBOT_RATELIMIT_WRITE_SESSION = env_str("CHATBOT_RATELIMIT_WRITE_SESSION", "60/m")
CHATBOT_RATELIMIT_SESSION_CREATE_IP = env_str("CHATBOT_RATELIMIT_SESSION_CREATE_IP", "20/m")

# Spend limits: model tokens (prompt + completion) a day, per UTC day; 0 turns one off.
# A day's conversation of twenty turns with a full context is about 100,000 tokens.
# Counted in Redis like the rate limits, and failing open like them (conversations/spend.py).
CHATBOT_DAILY_TOKENS_PER_ADDRESS = env_int("CHATBOT_DAILY_TOKENS_PER_ADDRESS", 500_000, minimum=0)
CHATBOT_DAILY_TOKENS_PER_SESSION = env_int("CHATBOT_DAILY_TOKENS_PER_SESSION", 200_000, minimum=0)
CHATBOT_DAILY_TOKENS_GLOBAL = env_int("CHATBOT_DAILY_TOKENS_GLOBAL", 0, minimum=0)

# What the model sees: the system prompt, then as many of the latest messages as fit.
CHATBOT_SYSTEM_PROMPT = env_str(
    "CHATBOT_SYSTEM_PROMPT",
    "You are a helpful assistant on a company's website. Answer concisely.",
)
CHATBOT_CONTEXT_MAX_MESSAGES = env_int("CHATBOT_CONTEXT_MAX_MESSAGES", 50, minimum=0)
CHATBOT_CONTEXT_MAX_TOKENS = env_int("CHATBOT_CONTEXT_MAX_TOKENS", 8000, minimum=1)
CHATBOT_REPLY_MAX_TOKENS = env_int("CHATBOT_REPLY_MAX_TOKENS", 1024, minimum=1)

# The upstream model. Without OPENAI_API_KEY the built-in offline responder answers.
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")  # any OpenAI-compatible server
CHAT_MODEL = env_str("CHAT_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT = env_float("OPENAI_TIMEOUT", 60.0)
OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 2, minimum=0)
# The model backend, by dotted path (conversations/llm.py states the contract).
CHATBOT_MODEL_BACKEND = env_str(
    "CHATBOT_MODEL_BACKEND",
    "conversations.llm.OpenAIChatModel" if OPENAI_API_KEY else "conversations.llm.OfflineChatModel",
)

# --- Turns in flight --------------------------------------------------------------------
# Answers one server process may be waiting on at once, plain and streamed; past it a
# turn is refused at once with 503 "busy" and Retry-After instead of queueing unseen.
CHATBOT_MAX_TURNS_IN_FLIGHT = env_int("CHATBOT_MAX_TURNS_IN_FLIGHT", 2000, minimum=1)
CHATBOT_BUSY_RETRY_AFTER = env_int("CHATBOT_BUSY_RETRY_AFTER", 2, minimum=1)
# A turn being answered reserves its client_message_id for this long, so duplicates wait
# for it instead of asking the model again; a reservation whose process died expires.
CHATBOT_TURN_RESERVATION_SECONDS = env_float("CHATBOT_TURN_RESERVATION_SECONDS", 120.0)
# Database threads for the turns' writes, and how long a graceful shutdown waits for
# the turns still in flight.
CHATBOT_TURN_DB_THREADS = env_int("CHATBOT_TURN_DB_THREADS", 8, minimum=1)
CHATBOT_SHUTDOWN_GRACE_SECONDS = env_float("CHATBOT_SHUTDOWN_GRACE_SECONDS", 30.0)

# --- Live feeds -------------------------------------------------------------------------
# An open feed (/api/session/<id>/events) sends a comment this often when nothing else
# happens, so proxies and load balancers do not close it as idle.
CHATBOT_LIVE_HEARTBEAT_SECONDS = env_float("CHATBOT_LIVE_HEARTBEAT_SECONDS", 15.0)
if CHATBOT_LIVE_HEARTBEAT_SECONDS <= 0:
    raise ImproperlyConfigured("CHATBOT_LIVE_HEARTBEAT_SECONDS must be more than 0")

# --- Knowledge base -------------------------------------------------------------------
# The site's own pages, which answers are grounded in and cite (knowledge/).
# strict: answer only from the pages, and say so when they do not hold the answer;
# assist: the model may answer from general knowledge too.
CHATBOT_KB_MODE = env_str("CHATBOT_KB_MODE", "strict")
if CHATBOT_KB_MODE not in ("strict", "assist"):
    raise ImproperlyConfigured("CHATBOT_KB_MODE must be strict or assist")
# The default is said in the visitor's language (marked for the catalogs); your own as set.
CHATBOT_KB_NO_ANSWER_TEXT = env_str(
    "CHATBOT_KB_NO_ANSWER_TEXT", gettext_noop("I couldn't find that on this site, so I'd rather not guess.")
)
CHATBOT_KB_CONTACT_URL = env_str("CHATBOT_KB_CONTACT_URL")  # offered with a no-answer reply
# Tokens of passages a turn's prompt may carry, and the most passages it may carry.
CHATBOT_KB_CONTEXT_TOKENS = env_int("CHATBOT_KB_CONTEXT_TOKENS", 1800, minimum=100)
CHATBOT_KB_MAX_PASSAGES = env_int("CHATBOT_KB_MAX_PASSAGES", 5, minimum=1)
# The crawler fetches what staff point it at: a server-side request forgery surface.
# Private, loopback and link-local addresses are refused unless this is on (tests, intranets).
CHATBOT_KB_ALLOW_PRIVATE_HOSTS = env_bool("CHATBOT_KB_ALLOW_PRIVATE_HOSTS", False)
CHATBOT_KB_MAX_PAGES = env_int("CHATBOT_KB_MAX_PAGES", 500, minimum=1)
CHATBOT_KB_MAX_PAGE_BYTES = env_int("CHATBOT_KB_MAX_PAGE_BYTES", 5 * 1024 * 1024, minimum=1024)
CHATBOT_KB_FETCH_TIMEOUT = env_float("CHATBOT_KB_FETCH_TIMEOUT", 10.0)
# One admin upload of knowledge base files (the only body allowed past CHATBOT_MAX_BODY_BYTES).
CHATBOT_KB_MAX_UPLOAD_BYTES = env_int("CHATBOT_KB_MAX_UPLOAD_BYTES", 20 * 1024 * 1024, minimum=1024)
CHATBOT_KB_CRAWL_SECONDS = env_float("CHATBOT_KB_CRAWL_SECONDS", 600.0)
CHATBOT_KB_USER_AGENT = env_str("CHATBOT_KB_USER_AGENT", "ChatbotKnowledgeBase/1.0 (+site search for its chat widget)")
# Optional semantic search: an OpenAI-compatible /embeddings model (through OPENAI_BASE_URL),
# fused with the lexical rank. Empty: lexical only, and nothing is sent anywhere.
CHATBOT_EMBEDDING_MODEL = env_str("CHATBOT_EMBEDDING_MODEL")
# A passage found by meaning rather than by the question's words clears the relevance bar
# when its cosine with the question reaches this. Models differ (ada-002 puts unrelated
# texts near 0.7, text-embedding-3-* and MiniLM near 0.1-0.2): 0.5 errs high, so that a
# question the pages do not answer stays unanswered rather than answered from a neighbour.
CHATBOT_EMBEDDING_MIN_SIMILARITY = env_float("CHATBOT_EMBEDDING_MIN_SIMILARITY", 0.5)

# --- Handing a conversation to a person -----------------------------------------------
CHATBOT_HANDOFF_ENABLED = env_bool("CHATBOT_HANDOFF_ENABLED", True)
# Told (POST, signed JSON) when a visitor asks for a person; sent by the task queue.
CHATBOT_HANDOFF_WEBHOOK_URL = env_str("CHATBOT_HANDOFF_WEBHOOK_URL")
CHATBOT_HANDOFF_WEBHOOK_SECRET = env_str("CHATBOT_HANDOFF_WEBHOOK_SECRET")
CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS = env_int("CHATBOT_HANDOFF_WEBHOOK_ATTEMPTS", 5, minimum=1)
CHATBOT_HANDOFF_WEBHOOK_RETRY_SECONDS = env_float("CHATBOT_HANDOFF_WEBHOOK_RETRY_SECONDS", 30.0)
if CHATBOT_HANDOFF_WEBHOOK_RETRY_SECONDS < 0:
    raise ImproperlyConfigured("CHATBOT_HANDOFF_WEBHOOK_RETRY_SECONDS must not be negative")
CHATBOT_WEBHOOK_ALLOW_PRIVATE_HOSTS = env_bool("CHATBOT_WEBHOOK_ALLOW_PRIVATE_HOSTS", False)
# The site's own address (https://chat.example.com), for links to the admin in webhooks.
CHATBOT_PUBLIC_URL = env_str("CHATBOT_PUBLIC_URL")

# --- Insight page -------------------------------------------------------------------------
# What the model's tokens cost, per million, to estimate spend on the admin's insight page
# (prices differ by model and change: 0, the default, shows tokens without a cost).
CHATBOT_PRICE_PER_MILLION_INPUT_TOKENS = env_float("CHATBOT_PRICE_PER_MILLION_INPUT_TOKENS", 0.0)
CHATBOT_PRICE_PER_MILLION_OUTPUT_TOKENS = env_float("CHATBOT_PRICE_PER_MILLION_OUTPUT_TOKENS", 0.0)
if CHATBOT_PRICE_PER_MILLION_INPUT_TOKENS < 0 or CHATBOT_PRICE_PER_MILLION_OUTPUT_TOKENS < 0:
    raise ImproperlyConfigured("CHATBOT_PRICE_PER_MILLION_INPUT_TOKENS and _OUTPUT_TOKENS must not be negative")
CHATBOT_PRICE_CURRENCY = env_str("CHATBOT_PRICE_CURRENCY", "USD")

# --- Background tasks -------------------------------------------------------------------
# Crawls and re-syncs outlive a request: in production they run on the database task
# queue (the Procfile's worker: line); in development and tests, at once, in the caller.
TASKS = {
    "default": {
        "BACKEND": env_str(
            "CHATBOT_TASKS_BACKEND",
            "django_tasks.backends.immediate.ImmediateBackend" if DEBUG else "django_tasks_db.DatabaseBackend",
        )
    }
}

# --- Logging ----------------------------------------------------------------------------

# Every logger that writes anywhere is named here, on one handler that redacts session
# ids (conversations/logs.py). Django's own defaults are not left in place: under DEBUG
# its "django" logger has a console handler of its own, which printed full ids in every
# "Not Found: /api/session/<id>/…" line; uvicorn's loggers have theirs.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_session_ids": {"()": "conversations.logs.RedactSessionIds"}},
    "formatters": {
        "plain": {
            "()": "conversations.logs.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_session_ids"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "propagate": False},
        # Access logs print paths in full, and paths carry session ids: the capability
        # an anonymous conversation is protected by.
        "django.server": {"handlers": ["console"], "propagate": False},
        "uvicorn": {"handlers": ["console"], "propagate": False},
        "uvicorn.access": {"handlers": ["console"], "propagate": False},
        # The SDK's HTTP client logs every upstream request at INFO.
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
    },
}
