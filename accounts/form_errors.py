"""A service's ValidationError shown on the form that called it (one helper for every app's pages)."""

from django.core.exceptions import ValidationError


def apply_errors(form, error: ValidationError) -> None:
    """Each message under its field when the form has that field, else at the top of the form."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)
