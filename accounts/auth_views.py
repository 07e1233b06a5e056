"""Django's auth views with the limits this site adds (the login form itself is watched by axes)."""

from axes.helpers import get_client_ip_address
from axes.utils import reset as axes_reset
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect

from .login_limits import password_reset_allowed


class LimitedPasswordResetView(auth_views.PasswordResetView):
    """Sends at most a few reset e-mails per address and per IP each hour.

    Over the cap the page says exactly what it says otherwise (it must not tell which
    addresses have an account), but no e-mail leaves.
    """

    def form_valid(self, form):
        email = form.cleaned_data["email"]
        if password_reset_allowed(email=email, ip_address=get_client_ip_address(self.request)):
            return super().form_valid(form)
        return HttpResponseRedirect(self.get_success_url())


class UnlockingPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Choosing a new password through the e-mailed link lifts the account's lockout: the way back."""

    def form_valid(self, form):
        response = super().form_valid(form)
        axes_reset(username=form.user.email.lower())
        return response
