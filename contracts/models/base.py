"""What every contracts model shares: the limits people can type up to, and field errors in
the site's own words."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

MAX_SEASON_DAYS = 731  # two years: a longer "season" is a typing error
MAX_INSTALMENTS = 12
MAX_CAPACITY_SHARES = 100_000
MAX_TEXT_LENGTH = 20_000  # a contract's presentation and commitments
MAX_PRODUCT_QUANTITY = 1000


class HouseMessagesMixin:
    """Field errors in the words people read on this site, looked up by (field, code) then by code.

    Django's generic messages stay for any error not listed in `FIELD_MESSAGES`.
    """

    FIELD_MESSAGES: dict = {
        "blank": _("Ce champ est obligatoire."),
        "max_length": _("%(limit_value)s caractères au plus."),
    }

    def clean_fields(self, exclude=None):
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as error:
            raise ValidationError(
                {
                    name: list(dict.fromkeys(self._house_message(name, item) for item in errors))
                    for name, errors in error.error_dict.items()
                }
            ) from None

    def _house_message(self, name: str, error: ValidationError) -> str:
        message = self.FIELD_MESSAGES.get((name, error.code), self.FIELD_MESSAGES.get(error.code))
        if message is None:
            return error.messages[0]
        if callable(message):
            return message(self)
        return str(message) % (error.params or {})
