"""Settings: every value comes from the environment, with embedded defaults for `make run`.

The embedded default is SQLite plus Celery's filesystem broker under ``var/``; production sets
DATABASE_URL, CELERY_BROKER_URL (or REDIS_URL) and SECRET_KEY. See README "Configuration".
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _dev_secret_key() -> str:
    """Keep a generated key in var/ so sessions survive restarts of the embedded setup."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or _dev_secret_key()
# The key secrets stored in the database are sealed with (common/sealed.py: an AI judge's API
# key): any string; empty derives it from SECRET_KEY. Fallbacks still open older values.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
FIELD_ENCRYPTION_KEY_FALLBACKS = env.list("FIELD_ENCRYPTION_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "feedback_app.common",
    "feedback_app.core",
    "feedback_app.accounts",
    "feedback_app.annotation",
    "feedback_app.workspace",
    "feedback_app.preferences",
    "feedback_app.finetuning",
    "rest_framework",
    "django_filters",
    "knox",
    "axes",
    "csp",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "feedback_app.api.middleware.ApiUrlLengthMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "feedback_app.accounts.headers.CSPMiddleware",  # django-csp, its header built once
    # 413 for a body over its view's limit, before anything reads it; 503 when the database
    # stays locked (feedback_app/common/middleware.py).
    "feedback_app.common.middleware.RequestLimitsMiddleware",
    "feedback_app.common.middleware.DatabaseBusyMiddleware",
    # A view's empty 405 (require_POST) becomes a page or JSON that says what the URL takes.
    "feedback_app.common.middleware.MethodNotAllowedMiddleware",
    # Last, as axes asks: turns a login refused for lockout into the 429 (accounts/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "feedback_app.urls"
WSGI_APPLICATION = "feedback_app.wsgi.application"

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
                "feedback_app.finetuning.context_processors.jobs_running",
            ],
        },
    },
    {
        # The ranking page and the quality dashboards (feedback_app/common/jinja2.py says why).
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {
            "environment": "feedback_app.common.jinja2.environment",
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "feedback_app.finetuning.context_processors.jobs_running",
            ],
        },
    },
]

# How long a statement waits for a lock before giving up; the request then answers 503 with
# Retry-After (feedback_app/common/middleware.py) instead of hanging or failing with a 500.
DB_LOCK_TIMEOUT_SECONDS = env.float("DB_LOCK_TIMEOUT_SECONDS", default=20.0)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE makes every atomic block take the write lock up front, which serialises
    # the task hand-out on SQLite (it has no row locks); WAL lets readers run alongside.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": DB_LOCK_TIMEOUT_SECONDS,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so a Celery worker process started by a test sees the same data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # Off by default, as in Django: the check is a `SELECT 1` round trip at the start of every
    # request (8 % of the ranking page's busy time under load, docs/bench-annotate.md). Turn it
    # on where the database restarts under a running app; without it the first request on
    # each dead connection fails once, and Django then drops that connection.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
    if DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
        # No JIT for the app's queries: they are short index lookups, and JIT compilation
        # (30-60 ms) triggered by a high cost estimate never pays off for them.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = (
            f"{options.get('options', '')} -c jit=off"
            f" -c lock_timeout={int(DB_LOCK_TIMEOUT_SECONDS * 1000)}"
        ).strip()
        # Parameters bound by the server, and a statement run 5 times on a connection kept as
        # a prepared statement: the hot path's statements are then neither parsed nor planned
        # again. Halved PostgreSQL's CPU a ranking (3.4 -> 1.5 ms) and cut Django's by 15 %
        # (docs/bench-annotate.md). Turn off behind PgBouncer in transaction pooling mode
        # older than 1.21, which cannot carry prepared statements across connections.
        if env.bool("DB_PREPARED_STATEMENTS", default=True):
            options.setdefault("server_side_binding", True)
            options.setdefault("prepare_threshold", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Short-lived derived values only (a project's count of unfilled tasks, sessions): the
# database stays the source of truth. Redis, shared by every process, when REDIS_URL is set;
# otherwise each process keeps its own in memory.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # django-redis keeps one client per server (Django's own backend builds a redis-py
            # client on every call: 177 against 52 µs a get here, docs/bench-annotate.md).
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "feedback",
        },
        # The API's rate-limit counts (api/throttling.py): the same server, their own keys.
        "throttle": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "feedback-throttle",
        },
    }
    # Sessions read from Redis and written through to the database: saves a query a request,
    # and a logout still ends the session everywhere because every process shares the cache.
    # (Not with the per-process memory cache: another process would keep a logged-out session.)
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        },
        "throttle": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "throttle",
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        },
    }

# The signed-in user read from the cache, for the same reason and only with the same shared
# cache (feedback_app/common/auth.py).
# axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "feedback_app.common.auth.CachedModelBackend",
]
CACHE_SIGNED_IN_USERS = bool(REDIS_URL)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# --- Failed logins (django-axes; README "Failed logins") ---------------------------------------
# Counted per account and, separately, per address: either reaching the limit locks logins for
# it (the page, the admin and the API's token endpoint) for the cool-off, or until an admin
# lifts it (axes' admin, `manage.py axes_reset_username NAME`, `axes_reset_ip ADDRESS`).
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True  # a user's typos are forgotten once they get in
# axes' login records (AccessLog, AccessFailureLog) are kept this long, then pruned by the
# sweeper with expired failed-login records (accounts/lockout.py, `lockout_records_prune`).
LOGIN_RECORDS_KEEP_DAYS = env.int("LOGIN_RECORDS_KEEP_DAYS", default=90)
LOGIN_RECORDS_PRUNE_EVERY_SECONDS = 3600
AXES_LOCKOUT_CALLABLE = "feedback_app.accounts.lockout.lockout_response"
AXES_USERNAME_FORM_FIELD = "username"
# The address failures are counted for: the socket's, which cannot be forged; behind a reverse
# proxy (where that is the proxy's, shared by everyone) the header the proxy sets, e.g.
# HTTP_X_FORWARDED_FOR, whose last entry is the one the proxy appended (accounts/lockout.py).
LOGIN_CLIENT_IP_HEADER = env.str("LOGIN_CLIENT_IP_HEADER", default="")
AXES_CLIENT_IP_CALLABLE = "feedback_app.accounts.lockout.client_ip"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

# --- E-mail (invitations) ----------------------------------------------------------------------
# Printed to the console by default (`make run`: the invitation link shows in the log). A real
# deployment sets EMAIL_URL (smtp+tls://user:password@host:587) or the EMAIL_* variables.
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env.str(
        "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
    )
    EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
    EMAIL_PORT = env.int("EMAIL_PORT", default=25)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="feedback-loop@localhost")
# How long an invitation's set-password link works (Django's password-reset tokens).
PASSWORD_RESET_TIMEOUT = env.int("INVITATION_TIMEOUT_SECONDS", default=3 * 24 * 3600)
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Without collectstatic (tests, `make run`), WhiteNoise serves straight from the finders.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# HTTPS in production (README, "Running in production"): `manage.py check --deploy` is clean
# with these set as the README says.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):  # the proxy says the request was HTTPS
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# No inline script or style on any page, no plugin, no framing, forms post only here
# (django-csp 4). Every page's scripts are files under static/js.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Largest request body a view takes (413 beyond it), except the prompt import's below.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=20 * 1024 * 1024)
# Largest prompt file (page upload, API body or multipart): it is read and checked whole
# before anything is written, so it must fit in memory a few times over.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=64 * 1024 * 1024)
# A project archive (workspace/archive/): the upload (413 beyond it), what it may unpack to
# (checked from the zip's directory and again while reading, so a zip bomb stops early), and
# one JSONL line (a prompt with its chat, a candidate). The import streams the members, so
# none of them is held in memory whole.
ARCHIVE_MAX_BYTES = env.int("ARCHIVE_MAX_BYTES", default=512 * 1024 * 1024)
ARCHIVE_MAX_UNPACKED_BYTES = env.int("ARCHIVE_MAX_UNPACKED_BYTES", default=8 * 1024 * 1024 * 1024)
ARCHIVE_MAX_LINE_BYTES = env.int("ARCHIVE_MAX_LINE_BYTES", default=16 * 1024 * 1024)
# An API archive import is a job: the upload is kept here until its worker has read it (a
# folder every web process and default-queue worker share), and it is written ARCHIVE_CHUNK_ROWS
# rows a transaction, so other writers go on between chunks.
ARCHIVE_UPLOAD_DIR = Path(env.str("ARCHIVE_UPLOAD_DIR", default=str(VAR_DIR / "archive-uploads")))
ARCHIVE_CHUNK_ROWS = env.int("ARCHIVE_CHUNK_ROWS", default=1000)

# --- Celery ---------------------------------------------------------------------------------
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or env.str("REDIS_URL", default="")
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://localhost/"  # a host name keeps kombu from warning
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed", "control"):
        (_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "out"),
        "data_folder_out": str(_BROKER_DIR / "out"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="")
if not CELERY_RESULT_BACKEND:
    if CELERY_BROKER_URL.startswith("redis"):
        CELERY_RESULT_BACKEND = CELERY_BROKER_URL
    else:
        (VAR_DIR / "results").mkdir(exist_ok=True)
        CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker pool, and what a pool child killed by the OOM killer does (measured in
# docs/architecture.md, "Workers and lost children"). On the filesystem broker the prefork
# pool runs without an event loop, and its idle child waits on the pool's shared queue while
# holding the queue's lock: kill it and the replacement blocks on that lock for good (3 of 3;
# SIGTERM no longer stops the worker). The solo pool has no child to lose. On Redis the prefork
# pool gives every child its own queues and a lost child is replaced; it also enforces the
# hard time limit and hands a job's memory back to the system with its child.
CELERY_WORKER_POOL = env.str(
    "CELERY_WORKER_POOL",
    default="solo" if CELERY_BROKER_URL.startswith("filesystem://") else "prefork",
)
# prefork: a fresh child for every job, so a training job's memory leaves with its process
# (the model left in memory is what the OOM killer went for). The solo pool ignores it.
CELERY_WORKER_MAX_TASKS_PER_CHILD = 1
# prefork: the message of a job whose child died goes back to the queue instead of being
# acknowledged. A job already claimed is not run again (the claim is atomic: the redelivery
# does nothing, and the sweep fails the job once its heartbeat is stale), so no message loops;
# one whose child died before its claim runs at once instead of waiting for the sweep's resend.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Annotation -----------------------------------------------------------------------------
ANNOTATION_LEASE_SECONDS = env.int("ANNOTATION_LEASE_SECONDS", default=15 * 60)
# Quality report (preferences/reports.py): refreshed by a worker at most once a project per this
# many seconds after rankings arrive (annotation/quality_refresh.py); 0: only when asked.
QUALITY_REFRESH_SECONDS = env.float("QUALITY_REFRESH_SECONDS", default=60.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes' start-up banner on every command; its failed-login warnings still show.
    "loggers": {"axes.apps": {"level": "WARNING"}},
}

# --- Jobs and models --------------------------------------------------------------------------
MODEL_DIR = Path(env.str("MODEL_DIR", default=str(VAR_DIR / "models")))
SNAPSHOT_DIR = Path(env.str("SNAPSHOT_DIR", default=str(VAR_DIR / "snapshots")))
# Object storage for models and snapshots (feedback_app/core/artifacts.py): empty keeps them in
# MODEL_DIR / SNAPSHOT_DIR; "s3://bucket/prefix" uploads them there (S3_ENDPOINT_URL for MinIO and
# the like, credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY); workers download an
# artifact into ARTIFACT_CACHE_DIR before loading it.
ARTIFACT_STORAGE = env.str("ARTIFACT_STORAGE", default="")
S3_ENDPOINT_URL = env.str("S3_ENDPOINT_URL", default="")
ARTIFACT_CACHE_DIR = Path(env.str("ARTIFACT_CACHE_DIR", default=str(VAR_DIR / "artifact-cache")))
# Where `bootstrap` caches the offline base model (shared by every project and run).
BASE_MODEL_CACHE = Path(
    env.str("BASE_MODEL_CACHE", default=str(BASE_DIR / ".cache" / "base-model"))
)
JOB_HEARTBEAT_SECONDS = env.float("JOB_HEARTBEAT_SECONDS", default=3.0)
# A running job whose heartbeat is older than this is failed by the sweep (its worker died).
JOB_STALE_AFTER_SECONDS = env.float("JOB_STALE_AFTER_SECONDS", default=60.0)
# How often the sweeper (`manage.py sweep_jobs`, its own process) makes a pass.
JOB_SWEEP_EVERY_SECONDS = env.float("JOB_SWEEP_EVERY_SECONDS", default=10.0)
# A queued job waiting this long with no sign of a worker for its queue (docs/architecture.md,
# "Jobs"): the loop page says so; the sweep sends its message again; the sweep fails it.
JOB_UNCLAIMED_WARN_SECONDS = env.float("JOB_UNCLAIMED_WARN_SECONDS", default=60.0)
JOB_UNCLAIMED_RESEND_SECONDS = env.float("JOB_UNCLAIMED_RESEND_SECONDS", default=300.0)
JOB_UNCLAIMED_FAIL_SECONDS = env.float("JOB_UNCLAIMED_FAIL_SECONDS", default=1800.0)
JOB_TIME_LIMIT_SECONDS = env.int("JOB_TIME_LIMIT_SECONDS", default=6 * 3600)
# torch threads per job (unset: torch's default, all cores). On a machine shared with the web
# server and database, 1 thread per concurrent job measured far faster (docs/training.md).
TORCH_THREADS = env.int("TORCH_THREADS", default=None)
# Where training jobs run, for their default sizes (training/stages.py, DEVICE_DEFAULTS):
# "cpu", "cuda", or "auto" (this process asks torch whether it sees a GPU).
TRAINING_DEVICE = env.str("TRAINING_DEVICE", default="auto")
# Reward models the web keeps loaded for `/get_reward` (finetuning/serving.py), most recent kept.
REWARD_SERVE_MODELS = env.int("REWARD_SERVE_MODELS", default=2)
# The Celery queue of each kind of work; which kind of work each job kind is, is declared with
# the kind (feedback_app/finetuning/kinds.py). Training workers may live on GPU machines.
JOB_QUEUES = {
    "default": env.str("QUEUE_DEFAULT", default="default"),
    "generation": env.str("QUEUE_GENERATION", default="generation"),
    "training": env.str("QUEUE_TRAINING", default="training"),
}

# --- REST API (feedback_app/api, docs/api.md) --------------------------------------------------
# Longest URL (path and query) the API reads; longer ones get its JSON 414 (api/middleware.py).
# Not a setting to raise: every gunicorn command line sets --limit-request-line 8190, gunicorn's
# most, and the whole request line must fit in that for Django to see it.
API_MAX_URL_LENGTH = 4096
REST_FRAMEWORK = {
    # Token first: an anonymous request then gets 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "feedback_app.accounts.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "feedback_app.api.throttling.UserThrottle",
        "feedback_app.api.throttling.AnonThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="1000/min"),
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
    },
    # JSON bodies only, except where a view says otherwise (the prompt import takes files);
    # DRF's parser with a bound on nesting (api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["feedback_app.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "feedback_app.api.pagination.IdCursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "feedback_app.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "feedback_app.api.schema.ApiSchema",
}
# API tokens (feedback_app/accounts/tokens.py): knox's hashed tokens, our model with a name.
KNOX_TOKEN_MODEL = "accounts.ApiToken"
# knox's own token model is swapped out, so its migrations (which would still create an empty
# knox_authtoken table) are switched off: accounts_apitoken is the one token table.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
    "AUTH_HEADER_PREFIX": "Token",  # what scripts already send
    "TOKEN_TTL": None,  # every token gets its expiry from token_create
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Feedback loop API",
    "DESCRIPTION": "Import prompts, annotate, export preference pairs, run the training loop.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    "COMPONENT_SPLIT_REQUEST": True,
    # No CDN is reachable: the docs page's assets come from drf-spectacular-sidecar.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "JobKindEnum": "feedback_app.core.models.Job.Kind",
        "ModelVersionKindEnum": "feedback_app.core.models.ModelVersion.Kind",
        "FeedbackKindEnum": "feedback_app.preferences.models.DeploymentFeedback.Kind",
        "ModelVersionStageEnum": "feedback_app.core.models.ModelVersion.Stage",
        "AutopilotStageEnum": "feedback_app.finetuning.models.Autopilot.Stage",
        "JudgeKindEnum": "feedback_app.core.models.Judge.Kind",
    },
}

# Model versions served over the OpenAI protocol (README, "Serving a model version"): where the
# playground finds each one. Comma-separated `<version id>=<base url>`, `*=<url>` for the rest,
# e.g. "*=http://model-server:8001/v1" (one `transformers serve` loads any version on demand).
MODEL_SERVER_URLS = env.str("MODEL_SERVER_URLS", default="")
# The playground's bounded call to a running server: seconds before it gives up, and tokens.
MODEL_SERVER_TIMEOUT_SECONDS = env.float("MODEL_SERVER_TIMEOUT_SECONDS", default=30.0)
PLAYGROUND_MAX_TOKENS = env.int("PLAYGROUND_MAX_TOKENS", default=128)
