"""Login protection: django-axes counts failed logins per account and per IP on every door.

The doors are the login form, the admin login and (through the session) the API: all of them
authenticate with a request, so axes sees them. Password-reset e-mails are capped here too.
"""

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.core.cache import cache
from django.shortcuts import render


class LoginLimitBackend(AxesStandaloneBackend):
    """Refuses any login while the account or the IP is locked out.

    Logins without a request (the test client's `login()`, shell scripts) come from no HTTP door,
    so there is nothing to count: they pass through to the next backend.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def login_username(request, credentials: dict | None) -> str | None:
    """The address as the person typed it, trimmed and lower-cased: `A@x.fr` and `a@x.fr` share a count."""
    if credentials:
        value = credentials.get("username") or credentials.get("email")
    else:
        data = getattr(request, "data", None) or request.POST
        value = data.get("username") or data.get("email")
    return value.strip().lower() if isinstance(value, str) else value


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out person sees: what happened, how long to wait, the way back."""
    cool_off = get_cool_off(request)
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    return render(
        request,
        "registration/locked_out.html",
        {"cool_off_minutes": minutes},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


def password_reset_allowed(*, email: str, ip_address: str | None) -> bool:
    """Counts one reset e-mail for this address and this IP; False once either is over its hourly cap.

    Counters live in Django's cache (shared by every web worker when CACHE_URL points at Redis).
    """
    window = settings.PASSWORD_RESET_WINDOW_SECONDS
    keys = [
        (f"pwreset:email:{email.strip().lower()}", settings.PASSWORD_RESET_PER_EMAIL),
        (f"pwreset:ip:{ip_address or '-'}", settings.PASSWORD_RESET_PER_IP),
    ]
    allowed = True
    for key, limit in keys:
        cache.add(key, 0, timeout=window)  # starts the window on the first request only
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
            count = 1
        allowed = allowed and count <= limit
    return allowed
