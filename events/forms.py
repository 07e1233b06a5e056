"""Forms of the shifts and events pages; rules live in the models and services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import MAX_NEEDED, Event, Rsvp

DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class DateForm(forms.Form):
    date = forms.DateField(label=_("Date"), input_formats=["%Y-%m-%d"])


class ShiftQuotaForm(forms.Form):
    """The AMAP's number, then one optional number per running contract (`contract_<id>`)."""

    needed = forms.IntegerField(label=_("Membres de permanence par distribution"), min_value=0, max_value=MAX_NEEDED)

    def __init__(self, *args, contracts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.contracts = list(contracts)
        for contract in self.contracts:
            self.fields[f"contract_{contract.pk}"] = forms.IntegerField(
                label=_("« %(title)s » (vide : le nombre de l'AMAP)") % {"title": contract.title},
                min_value=0,
                max_value=MAX_NEEDED,
                required=False,
            )

    def per_contract(self) -> dict[int, int | None]:
        return {c.pk: self.cleaned_data.get(f"contract_{c.pk}") for c in self.contracts}


class EventForm(forms.ModelForm):
    starts_at = forms.DateTimeField(label=_("Début"), widget=DATETIME_INPUT, input_formats=["%Y-%m-%dT%H:%M"])
    ends_at = forms.DateTimeField(label=_("Fin"), widget=DATETIME_INPUT, input_formats=["%Y-%m-%dT%H:%M"])

    class Meta:
        model = Event
        fields = ["kind", "title", "description", "place", "starts_at", "ends_at", "capacity", "is_public"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def clean(self):
        data = super().clean()
        start, end = data.get("starts_at"), data.get("ends_at")
        if start and end and end <= start:
            self.add_error("ends_at", _("La fin doit suivre le début."))
        return data

    def _post_clean(self):
        # The organiser (AMAP or network) is set by the service: skip the model's check here.
        pass


class EventCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif de l'annulation"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Les inscrit·es le reçoivent par e-mail ; il reste affiché sur la page de l'évènement."),
        error_messages={"required": _("Dites en quelques mots pourquoi : les inscrit·es le liront.")},
    )


class RsvpForm(forms.Form):
    answer = forms.ChoiceField(choices=[(Rsvp.Answer.YES, _("oui")), (Rsvp.Answer.NO, _("non"))])
