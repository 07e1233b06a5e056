"""AMAP Atlas settings: one module, everything that varies comes from the environment."""

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Development gets a fixed throwaway key; anything else must provide its own.
SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key" if DEBUG else None)
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
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
    "rest_framework",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "geo",
    "directory",
    "matching",
    "maps",
    "coverage",
    "contracts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:dashboard"
LOGOUT_REDIRECT_URL = "directory:home"

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

EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="AMAP Atlas <noreply@localhost>")

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

REST_FRAMEWORK = {
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

# Geocoding: the offline gazetteer always works; the national address API (BAN) is an
# optional extra for street addresses.
GEOCODER_BAN_ENABLED = env.bool("GEOCODER_BAN_ENABLED", default=False)
GEOCODER_BAN_URL = env("GEOCODER_BAN_URL", default="https://api-adresse.data.gouv.fr")
GEOCODER_BAN_TIMEOUT = env.float("GEOCODER_BAN_TIMEOUT", default=3.0)

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

# Where the territories reference data lives (copied from ../shared/data, see SOURCE).
TERRITORIES_DIR = env.path("TERRITORIES_DIR", default=BASE_DIR / "fixtures" / "territories")

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # WeasyPrint reports each step of every PDF at INFO.
    "loggers": {"weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}

# Debian 12 ships GDAL 3.6, which cannot block file/network access from spatial reference
# strings. GeoDjango here only parses SRIDs we set ourselves; uploaded files go through
# pyogrio, which bundles its own GDAL.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]
