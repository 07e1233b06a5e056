"""AMAP Atlas settings: one module, everything that varies comes from the environment."""

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Development settings live in .env (`make` writes one: DEBUG=1 and a random key); the
# environment always wins over it. ATLAS_ENV_FILE names another file, and empty reads none:
# `make test` and the settings tests use that, so a developer's .env cannot change what they check.
ENV_FILE = env("ATLAS_ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE:
    environ.Env.read_env(ENV_FILE, overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Development without a .env gets a fixed throwaway key; anything else must provide its own.
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key" if DEBUG else None)
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
# Keys the mask of the farms' locations (geo.masking): without a secret, a public point is a hash of
# public data away from the farmhouse. Never published; to rotate it see the README (« Production »).
LOCATION_MASK_KEY = env("LOCATION_MASK_KEY", default="dev-only-location-mask-key" if DEBUG else None)
if not LOCATION_MASK_KEY:
    raise environ.ImproperlyConfigured("LOCATION_MASK_KEY must be set when DEBUG is off")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "axes",
    "rest_framework",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "accounts",
    "geo",
    "directory",
    "matching",
    "maps",
    "coverage",
    "contracts",
    "members",
    "events",
    "ops",
    "procrastinate.contrib.django",
    "config.jobs",
]

MIDDLEWARE = [
    "config.request_log.RequestLogMiddleware",
    # Anonymous GETs may read the public directory from a replica (only when one is configured).
    "config.db_router.PublicReadsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before sessions and auth: a NUL in a cookie, a header or a parameter never reaches the database.
    "config.middleware.ControlCharactersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Who made each change to the directory (django-simple-history records request.user).
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# The project-local cluster started by `scripts/db.sh` listens on a Unix socket under
# .var/run (no TCP port, so several checkouts never collide), unless DATABASE_URL is set.
LOCAL_DB_SOCKET_DIR = BASE_DIR / ".var" / "run"
LOCAL_DB_PORT = env.int("ATLAS_DB_PORT", default=54329)
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    DATABASES = {
        "default": {
            "NAME": env("ATLAS_DB_NAME", default="atlas"),
            "USER": "atlas",
            "PASSWORD": "",
            "HOST": str(LOCAL_DB_SOCKET_DIR),
            "PORT": LOCAL_DB_PORT,
        }
    }
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# Statements run with server-side binding are prepared after this many runs (psycopg): only the
# nearest search opts in (directory.selectors); Django's own queries bind client-side and are
# never prepared. Set DATABASE_PREPARED_STATEMENTS=0 behind a pooler in transaction mode that
# cannot keep prepared statements (PgBouncer before 1.21).
if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
# Each concurrent test run (e.g. two developers on one cluster) can pick its own name.
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_atlas")}
# A streaming read replica of the primary (README « Au-delà d'une machine »): anonymous visitors'
# reads of the public directory go there (config.db_router); everything else reads the primary.
DATABASE_READ_REPLICA = None
if env("DATABASE_REPLICA_URL", default=""):
    DATABASE_READ_REPLICA = "replica"
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"]["ENGINE"] = DATABASES["default"]["ENGINE"]
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    if "OPTIONS" in DATABASES["default"]:
        DATABASES["replica"].setdefault("OPTIONS", {}).update(DATABASES["default"]["OPTIONS"])
    # Tests read the replica from the test database itself.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["config.db_router.PrimaryReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:dashboard"
LOGOUT_REDIRECT_URL = "directory:home"

# Login protection (django-axes): every door (login form, admin login, API through the session)
# authenticates with a request, and failures are counted per account and, separately, per IP.
AUTHENTICATION_BACKENDS = [
    "accounts.login_limits.LoginLimitBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
# Two separate entries: an account is locked after the limit whatever the IP, and an IP is locked
# after the limit whatever the accounts it tries (a password sprayed over many addresses).
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no start-up banner on every manage.py command
AXES_USERNAME_CALLABLE = "accounts.login_limits.login_username"
AXES_LOCKOUT_CALLABLE = "accounts.login_limits.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# Behind a reverse proxy, REMOTE_ADDR is the proxy: set the number of proxies in front of Django
# (and install django-ipware) so that axes reads the client's address from X-Forwarded-For.
AXES_IPWARE_PROXY_COUNT = env.int("LOGIN_PROXY_COUNT", default=None)
# Password-reset e-mails: at most this many per address and per IP in the window.
PASSWORD_RESET_PER_EMAIL = env.int("PASSWORD_RESET_PER_EMAIL", default=3)
PASSWORD_RESET_PER_IP = env.int("PASSWORD_RESET_PER_IP", default=10)
PASSWORD_RESET_WINDOW_SECONDS = 3600

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "fr"
# French only until an English catalogue exists (otherwise pages come out half-translated).
LANGUAGES = [("fr", _("Français"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / ".var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".var" / "media")
MEDIA_URL = "/media/"
# Backups (`manage.py backup` / `restore`, ops/backup.py): where archives go, and where pg_dump and
# pg_restore live when not in /usr/lib/postgresql/<server major>/bin.
BACKUP_DIR = env.path("BACKUP_DIR", default=BASE_DIR / ".var" / "backups")
PG_BIN_DIR = env("PG_BIN_DIR", default="")

# Every e-mail becomes a job (accounts.mail), enqueued in the transaction that asks for it; the
# worker hands it to EMAIL_DELIVERY_BACKEND, retrying with backoff while the server is down.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="accounts.mail.QueuedEmailBackend")
EMAIL_DELIVERY_BACKEND = env(
    "EMAIL_DELIVERY_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = env.path("EMAIL_FILE_PATH", default=BASE_DIR / ".var" / "mail")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="AMAP Atlas <noreply@localhost>")

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"].endswith("LocMemCache"):
    # Each process's own memory (Django's default keeps 300 entries): room for the kept pages and
    # tiles of a busy directory, a few tens of MB at most. Several processes: a shared cache.
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 3000)
# Anonymous visitors' public pages (home, search, AMAP and farm pages) are kept whole in the cache
# for this long, under the public data's version (directory.page_cache); 0 turns it off.
PAGE_CACHE_SECONDS = env.int("PAGE_CACHE_SECONDS", default=600)

REST_FRAMEWORK = {
    # The session only (and its CSRF check): no HTTP Basic, which would be a password door
    # with no lockout and a password hash computed for every request.
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="120/minute"),
        "user": env("API_THROTTLE_USER", default="600/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AMAP Atlas API",
    "DESCRIPTION": "Annuaire spatial des AMAP, fermes et réseaux.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from the app's own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Declares the 400/403/404 every operation may answer, and times by pattern (config/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.declare_error_responses",
    ],
    # Several models have a "status": give each enum its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "AmapStatusEnum": "directory.models.Amap.Status",
        "NetworkStatusEnum": "directory.models.Network.Status",
        "AnnonceStatusEnum": "matching.models.Annonce.Status",
        "ContractStatusEnum": "contracts.models.Contract.Status",
        "DeliveryStatusEnum": "contracts.models.Delivery.Status",
        "SubscriptionStatusEnum": "contracts.models.Subscription.Status",
        "PaymentMethodEnum": "contracts.models.PaymentMethod",
        "WeekdayEnum": "directory.models.Weekday",
    },
}

# Geocoding: the offline gazetteer always answers; street addresses go first to the national
# address API (Base Adresse Nationale), or to a self-hosted Addok answering the same API (README
# « Adresses »). Offline, the first failure pauses the calls for GEOCODER_BAN_RETRY_AFTER seconds
# (a flag in the cache), so a server without Internet never makes each search wait.
GEOCODER_BAN_ENABLED = env.bool("GEOCODER_BAN_ENABLED", default=True)
GEOCODER_BAN_URL = env("GEOCODER_BAN_URL", default="https://api-adresse.data.gouv.fr")
GEOCODER_BAN_TIMEOUT = env.float("GEOCODER_BAN_TIMEOUT", default=1.5)
GEOCODER_BAN_RETRY_AFTER = env.int("GEOCODER_BAN_RETRY_AFTER", default=300)
# A self-hosted Addok (scripts/addok.sh, manage.py load_addresses, config/addok.conf): where its
# project-local Redis keeps data, socket and logs, and where the BAN's files are downloaded from
# ({departement} is the code).
ADDOK_CONFIG = BASE_DIR / "config" / "addok.conf"
ADDOK_VAR = Path(env("ADDOK_VAR", default=str(BASE_DIR / ".var" / "addok")))
ADDOK_REDIS_SOCKET = Path(env("ADDOK_REDIS_SOCKET", default=str(ADDOK_VAR / "redis.sock")))
ADDRESSES_FILES_URL = env(
    "ADDRESSES_FILES_URL",
    default="https://adresse.data.gouv.fr/data/ban/adresses/latest/addok/adresses-addok-{departement}.ndjson.gz",
)

# Matchmaking. Drive times are an estimate (geodesic distance × circuity ÷ speed) unless an
# OSRM-compatible routing server is configured (ROUTING_BACKEND=osrm).
ROUTING_BACKEND = env("ROUTING_BACKEND", default="estimate")
ROUTING_OSRM_URL = env("ROUTING_OSRM_URL", default="http://127.0.0.1:5000")
ROUTING_TIMEOUT = env.float("ROUTING_TIMEOUT", default=2.0)
ROUTING_CIRCUITY_FACTOR = env.float("ROUTING_CIRCUITY_FACTOR", default=1.3)
ROUTING_SPEED_KMH = env.float("ROUTING_SPEED_KMH", default=60.0)
MATCH_SYNERGY_RADIUS_KM = env.float("MATCH_SYNERGY_RADIUS_KM", default=15.0)
MATCH_BULK_SHORTLIST = env.int("MATCH_BULK_SHORTLIST", default=64)
# Absolute links in e-mails (digests, contact notifications).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# Maps: tiles are the only thing a visitor's browser fetches from elsewhere.
MAP_TILE_URL = env("MAP_TILE_URL", default="https://tile.openstreetmap.org/{z}/{x}/{y}.png")
MAP_TILE_ATTRIBUTION = env(
    "MAP_TILE_ATTRIBUTION",
    default='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>',
)

# Content-Security-Policy (django-csp) on every response. Scripts: our own files and inline
# scripts carrying the request's nonce (the maps' Folium code). Styles allow 'unsafe-inline':
# Leaflet positions every tile and marker with inline `style` attributes, and Folium writes
# `<style>` blocks and popup HTML with `style=`; a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        # + the tile server of MAP_TILE_URL, added per response (config.middleware).
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        # Only the embed may be framed (maps.views.embed replaces this with the network's sites).
        "frame-ancestors": [NONE],
    },
}

# Where the territories reference data lives (copied from ../shared/data, see SOURCE).
TERRITORIES_DIR = env.path("TERRITORIES_DIR", default=BASE_DIR / "fixtures" / "territories")

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes speak plain HTTP to the container, behind the TLS proxy.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Background jobs (Procrastinate, on the same PostgreSQL): each app's jobs live in its tasks.py.
PROCRASTINATE_ON_APP_READY = "config.jobs.middleware.on_app_ready"
# A summary PDF over more subscriptions than this is built by a job (« votre fichier est prêt »);
# prepared files are kept this many hours for their owner to download.
SUMMARY_PDF_INLINE_MAX_SUBSCRIPTIONS = env.int("SUMMARY_PDF_INLINE_MAX_SUBSCRIPTIONS", default=100)
PREPARED_FILE_HOURS = env.int("PREPARED_FILE_HOURS", default=24)
# Extra task modules (the two-worker test adds its own); normally empty.
PROCRASTINATE_IMPORT_PATHS = env.list("PROCRASTINATE_IMPORT_PATHS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Job arguments (whole e-mails, signature codes) stay out of the logs.
    "filters": {"hide_job_arguments": {"()": "config.jobs.log_filters.HideJobArguments"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["hide_job_arguments"]}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # WeasyPrint reports each step of every PDF at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # One line per request (config.middleware); runserver's own line would double it.
        "atlas.requests": {"level": env("REQUEST_LOG_LEVEL", default="INFO")},
        "django.server": {"level": "WARNING"},
        # Their INFO lines announce the task registry at every start of every command.
        "procrastinate.periodic": {"level": "WARNING"},
        "procrastinate.blueprints": {"level": "WARNING"},
    },
}

# Debian 12 ships GDAL 3.6, which cannot block file/network access from spatial reference
# strings. GeoDjango here only parses SRIDs we set ourselves; uploaded files go through
# pyogrio, which bundles its own GDAL.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
