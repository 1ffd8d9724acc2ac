"""Django settings, read from the environment only (12-factor).

Every variable, its default and its meaning are listed in README.md ("Configuration"). Without
``DATABASE_URL`` or ``REDIS_URL`` the embedded servers of :mod:`artefact_site.embedded` are used.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from apps.core.logs import logging_config
from apps.engine.config import model_settings_from_env
from apps.engine.images import CELL_VIEWS, WHITE_BALANCES, WHOLE_IMAGE_VIEWS
from artefact_site import embedded
from artefact_site.secret_key import load_or_create_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true or false.")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


DEBUG = env_bool("DEBUG", False)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

DATA_ROOT = embedded.default_data_root()

# Never a key written in the source: without SECRET_KEY, one generated on first start and kept
# in DATA_ROOT/secret_key (mode 0600). Several web hosts must share one: set SECRET_KEY there.
SECRET_KEY = os.environ.get("SECRET_KEY") or load_or_create_secret_key(DATA_ROOT)

# HTTPS deployments (ARTEFACT_HTTPS=true): cookies only over HTTPS, plain HTTP redirected, and
# HSTS. Behind ARTEFACT_PROXY_COUNT reverse proxies, X-Forwarded-Proto says whether the client
# used HTTPS and X-Forwarded-For who the client is (the log-in lockout and rate limits count
# per client address).
ARTEFACT_HTTPS = env_bool("ARTEFACT_HTTPS", False)
ARTEFACT_PROXY_COUNT = env_int("ARTEFACT_PROXY_COUNT", 0)
if ARTEFACT_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if ARTEFACT_HTTPS:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("ARTEFACT_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ARTEFACT_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("ARTEFACT_HSTS_PRELOAD", False)
    # /healthz answers the load balancer's plain-HTTP probe instead of redirecting it.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a commitment the site's owner makes for the whole domain (browsers
        # then never try HTTP there); it stays theirs to make, so its warning is silenced.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
MEDIA_ROOT = DATA_ROOT / "media"
MEDIA_URL = "/media/"
STATIC_ROOT = DATA_ROOT / "static"
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_rq",
    "apps.core",
    "apps.accounts",
    "apps.corpus",
    "apps.analysis",
    "apps.library",
    "apps.iiif",
    "apps.demo",
    # Counts failed log-ins and locks out a user name from an address after too many.
    "axes",
    # Last, as django-cleanup asks; select mode: only models marked `cleanup.select`.
    "django_cleanup.apps.CleanupSelectedConfig",
]

MIDDLEWARE = [
    # First: the request id is bound (and the latency timed) before anything else can log.
    "apps.core.middleware.RequestContext",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.PermissionsPolicy",
    "apps.core.middleware.RefuseNulCharacters",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked `login_not_required` (the landing
    # page, log-in, sign-up, password reset, /healthz); DRF views answer 401 themselves.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a locked-out log-in into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "artefact_site.urls"
WSGI_APPLICATION = "artefact_site.wsgi.application"
ASGI_APPLICATION = "artefact_site.asgi.application"

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
                "apps.library.context_processors.library",
            ],
        },
    },
]

_EMBEDDED_LAYOUT = embedded.Layout(DATA_ROOT)

# Connections are kept for a minute and checked before a request reuses one: after a
# PostgreSQL restart each web thread would otherwise fail its first request on a dead one.
_CONNECTION_REUSE = {"CONN_MAX_AGE": 60, "CONN_HEALTH_CHECKS": True}
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"]) | _CONNECTION_REUSE}
else:
    DATABASES = {"default": embedded.database_settings(_EMBEDDED_LAYOUT) | _CONNECTION_REUSE}

REDIS_URL = os.environ.get("REDIS_URL") or embedded.redis_url(_EMBEDDED_LAYOUT)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out log-in before the password is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
# Per user name and address: someone guessing one account's password is stopped, while its
# owner, from another address, can still log in (the address-wide limit is RATE_LIMITS).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "apps.core.ratelimit.client_ip"
AXES_LOCKOUT_CALLABLE = "apps.accounts.views.locked_out"

# Per client address (per user for API tokens), "count/period" with a period of s, m, h or d;
# counted in Redis (CACHES) so that every web process shares one count.
RATE_LIMITS = {
    "login": os.environ.get("RATE_LIMIT_LOGIN", "30/h"),
    "signup": os.environ.get("RATE_LIMIT_SIGNUP", "10/h"),
    "password_reset": os.environ.get("RATE_LIMIT_PASSWORD_RESET", "10/h"),
    "api_token": os.environ.get("RATE_LIMIT_API_TOKEN", "20/h"),
}
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Serve files straight from the finders in tests and development: no collectstatic step needed.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# RQ: model work goes to the GPU workers, which take the priority queue (text queries a
# request waits for) before the GPU queue (analyses, heatmaps); everything else is "default".
RQ_GPU_QUEUE = os.environ.get("RQ_GPU_QUEUE", "gpu")
RQ_PRIORITY_QUEUE = os.environ.get("RQ_PRIORITY_QUEUE", f"{RQ_GPU_QUEUE}-priority")
RQ_DEFAULT_TIMEOUT = env_int("RQ_JOB_TIMEOUT", 600)
RQ_QUEUES = {
    name: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": RQ_DEFAULT_TIMEOUT}
    for name in ("default", RQ_GPU_QUEUE, RQ_PRIORITY_QUEUE)
}
MODEL_WORKER_QUEUES = [RQ_PRIORITY_QUEUE, RQ_GPU_QUEUE]
"""What a model worker listens on, in the order it takes jobs."""

# Query vectors of text searches, shared by every web process.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "artefact",
    }
}

# Analyses (apps/analysis): upload limits, result counts and the worker's job budget.
ANALYSIS_MAX_UPLOAD_BYTES = env_int("ANALYSIS_MAX_UPLOAD_BYTES", 20_000_000)
ANALYSIS_MAX_PIXELS = env_int("ANALYSIS_MAX_PIXELS", 50_000_000)
ANALYSIS_JOB_TIMEOUT = env_int("ANALYSIS_JOB_TIMEOUT", 300)
# Uploads whose stored copies need their pixels decoded and re-encoded (all but upright RGB or
# greyscale JPEGs, which are kept as they came) are prepared in the request only up to this
# many pixels (about 120 ms of a web thread); larger ones are checked from their header there
# and prepared by the model worker before its model pass, so that no web thread spends seconds
# on one.
ANALYSIS_REQUEST_DECODE_PIXELS = env_int("ANALYSIS_REQUEST_DECODE_PIXELS", 2_000_000)
# Per researcher: uploads in the last hour, and analyses queued, running or being uploaded at
# once. Each upload costs a check (and for a small image a decode) in a web thread, then
# worker time.
ANALYSIS_UPLOADS_PER_HOUR = env_int("ANALYSIS_UPLOADS_PER_HOUR", 60)
ANALYSIS_MAX_ACTIVE_JOBS = env_int("ANALYSIS_MAX_ACTIVE_JOBS", 4)
# Per web process, whoever uploads: uploads decoded at once. With gunicorn's four threads, two
# always stay free for reading however many researchers upload large images together.
ANALYSIS_PARALLEL_DECODES = env_int("ANALYSIS_PARALLEL_DECODES", 2)
ANALYSIS_RESULTS = env_int("ANALYSIS_RESULTS", 25)
# How the worker sees a whole painting (or a region) for its embedding, and which view gives
# its grid of cells: `apps.engine.analyse_image`; docs/benchmarks/demo-quality.md measures
# them. The grid has ANALYSIS_GRID_SHORT_CELLS cells along the short side.
ANALYSIS_WHOLE_IMAGE = env_choice("ANALYSIS_WHOLE_IMAGE", "keep_aspect", WHOLE_IMAGE_VIEWS)
ANALYSIS_CELLS = env_choice("ANALYSIS_CELLS", "keep_aspect", CELL_VIEWS)
ANALYSIS_GRID_SHORT_CELLS = 7
# Figure search compares the corpus's plates and the analysed image (or region) white-balanced
# by this rule, so that a reproduction's colour cast does not hide the painting it shows
# (docs/benchmarks/figures.md); `none` compares them as they are. Sentence search always sees
# the colours. Changing it needs the figures embedded again (`embed_corpus --figures --again`).
FIGURE_WHITE_BALANCE = env_choice("FIGURE_WHITE_BALANCE", "grey_world", WHITE_BALANCES)
ANALYSIS_MAX_HEATMAPS = 10
ANALYSIS_PRELOAD_MODELS = env_bool("ANALYSIS_PRELOAD_MODELS", True)
# Short side of the reduced copy stored with each upload, which whole-image model passes read
# instead of decoding the full upload again; at least the models' input size (224 for CLIP
# ViT-B/32, 336 for ViT-L/14-336), or the worker falls back to the full upload.
ANALYSIS_REDUCED_SIDE = env_int("ANALYSIS_REDUCED_SIDE", 224)

# IIIF in (apps/iiif): hosts a researcher may name a IIIF URL of (empty, and IIIF_ALLOW_ANY_HOST
# off: IIIF in is off and its field hidden). With IIIF_ALLOW_ANY_HOST any other host too, if
# every address it resolves to is public. Fetches time out (each read, and the whole fetch),
# follow few redirects, and weigh at most ANALYSIS_MAX_UPLOAD_BYTES; images are asked for no
# larger than IIIF_MAX_SIDE px.
IIIF_ALLOWED_HOSTS = [host.lower() for host in env_list("IIIF_ALLOWED_HOSTS", [])]
IIIF_ALLOW_ANY_HOST = env_bool("IIIF_ALLOW_ANY_HOST", False)
IIIF_TIMEOUT_SECONDS = env_int("IIIF_TIMEOUT_SECONDS", 10)
IIIF_DEADLINE_SECONDS = env_int("IIIF_DEADLINE_SECONDS", 30)
IIIF_MAX_REDIRECTS = env_int("IIIF_MAX_REDIRECTS", 3)
IIIF_MAX_SIDE = env_int("IIIF_MAX_SIDE", 4000)

# Models (apps/engine): the model variables that are set; `apps.engine.config.MODEL_TABLE`
# gives every key's defaults (the demo model shipped in apps/demo) and `apps.core` hands these
# to the engine at start-up.
MODEL_SETTINGS = model_settings_from_env(os.environ)
# How long a request waits for a model worker to embed a text query, and how long the vector
# is cached for the same text and model.
ANALYSIS_TEXT_QUERY_TIMEOUT = env_int("ANALYSIS_TEXT_QUERY_TIMEOUT", 10)
ANALYSIS_QUERY_CACHE_SECONDS = env_int("ANALYSIS_QUERY_CACHE_SECONDS", 86_400)

# Corpus (apps/corpus): the public ArteFact datasets that `import_corpus --hf` downloads.
CORPUS_HF_DATASETS = {
    "json": os.environ.get("CORPUS_HF_JSON", "samwaugh/artefact-json"),
    "embeddings": os.environ.get("CORPUS_HF_EMBEDDINGS", "samwaugh/artefact-embeddings"),
    "markdown": os.environ.get("CORPUS_HF_MARKDOWN", "samwaugh/artefact-markdown"),
}
CORPUS_HF_CACHE = Path(os.environ.get("CORPUS_HF_CACHE") or DATA_ROOT / "hf-datasets")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous request then gets 401 with a WWW-Authenticate header.
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "apps.core.api.handle_exception",
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.core.throttling.UserThrottle",
        "apps.core.throttling.AnonThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_THROTTLE_USER", "2000/hour"),
        "anon": os.environ.get("API_THROTTLE_ANON", "100/hour"),
        "analyses": os.environ.get("API_THROTTLE_ANALYSES", "120/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ArteFact API",
    "DESCRIPTION": "Links what is seen in a painting to what art-history scholarship has written.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content-Security-Policy on every response (docs/frontend.md): scripts and styles only from
# files of this site, so no inline script, style or event handler runs even if one is injected.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# Permissions-Policy on every response (apps.core.middleware): no page uses these features.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
}
# Swagger UI would otherwise load a validity badge from validator.swagger.io (and send it the
# schema's address), which the CSP refuses.
SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"] = {"deepLinking": True, "validatorUrl": None}

# E-mail (password-reset links): printed on the console until EMAIL_HOST names an SMTP server.
# Django 6.1 configures mail with MAILERS; the EMAIL_* names live on as environment variables.
if os.environ.get("EMAIL_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": os.environ["EMAIL_HOST"],
                "port": env_int("EMAIL_PORT", 587),
                "username": os.environ.get("EMAIL_HOST_USER", ""),
                "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
                "use_tls": env_bool("EMAIL_USE_TLS", True),
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "ArteFact <noreply@localhost>")

# One JSON object per line unless LOG_FORMAT=plain (which `make run` uses for reading in a
# terminal): each record carries request_id and job_id (apps.core.logs, docs/operations.md).
LOG_FORMAT = env_choice("LOG_FORMAT", "json", ("json", "plain"))
LOGGING = logging_config(LOG_FORMAT, os.environ.get("LOG_LEVEL", "INFO"))

# GET /metrics (Prometheus): staff (a session or a staff API token), or this bearer token.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
