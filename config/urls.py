from django.conf import settings
from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static as static_url
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from accounts import urls as accounts_urls
from config import health
from directory import urls_manage as directory_manage_urls

# /comptes/ is one namespace, "accounts": the account pages and, from the directory (accounts
# imports no app above it), « Ma ferme » / « Mon AMAP ».
accounts_patterns = (accounts_urls.urlpatterns + directory_manage_urls.urlpatterns, accounts_urls.app_name)

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Browsers ask for /favicon.ico whatever the page's <link rel="icon"> says.
    path("favicon.ico", lambda request: redirect(static_url("favicon.ico"), permanent=True)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file: the docs work under the CSP (no inline script).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("maps.urls")),
    path("", include("directory.urls")),
    path("", include("coverage.urls")),
    path("comptes/", include(accounts_patterns)),
    path("", include("matching.urls")),
    path("contrats/", include("contracts.urls")),
    path("adherents/", include("members.urls")),
    path("evenements/", include("events.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
