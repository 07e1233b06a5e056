"""Forms for accounts: sign-up."""

from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import User


class SignupForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "display_name")
        labels = {"display_name": _("Nom affiché (visible par les personnes à qui vous écrivez)")}

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(_("Un compte existe déjà avec cette adresse."))
        return email
