"""Forms of the members pages; the rules live in services (errors come back from them)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from .audiences import audiences
from .models import AdhesionSeason, Membership, Message, PaymentMode
from .selectors import ROLE_CHOICES


class JoinForm(forms.Form):
    note = forms.CharField(
        label=_("Un mot pour l'équipe (facultatif)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class MemberFilterForm(forms.Form):
    q = forms.CharField(label=_("Rechercher"), required=False, max_length=100)
    contract = forms.TypedChoiceField(label=_("Contrat"), required=False, coerce=int, empty_value=None)
    adhesion = forms.ChoiceField(
        label=_("Adhésion"),
        required=False,
        choices=[("", _("toutes")), ("paid", _("réglée")), ("unpaid", _("à régler")), ("none", _("pas d'adhésion"))],
    )
    role = forms.ChoiceField(label=_("Rôle"), required=False, choices=[("", _("tous")), *ROLE_CHOICES])
    status = forms.ChoiceField(
        label=_("Statut"), required=False, choices=[("", _("tous (sauf départs)")), *Membership.Status.choices]
    )

    def __init__(self, *args, contracts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contract"].choices = [("", _("tous")), *((c.pk, c.title) for c in contracts)]


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("Tableau des membres (.csv ou .xlsx)"),
        help_text=_("Colonnes : « e-mail » (obligatoire), « prénom », « nom », « téléphone », « statut »."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 5 * 1024 * 1024:
            raise forms.ValidationError(_("5 Mo au plus."))
        return upload


class InviteForm(forms.Form):
    emails = forms.CharField(
        label=_("Adresses e-mail"),
        help_text=_("Une adresse par ligne (ou séparées par des virgules)."),
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=50000,
    )

    def email_list(self) -> list[str]:
        return self.cleaned_data["emails"].replace(",", "\n").replace(";", "\n").splitlines()


class SeasonForm(forms.ModelForm):
    tiers = forms.CharField(
        label=_("Tranches du barème"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Pour un barème : une tranche par ligne, « libellé : montant » (ex. « revenus modestes : 5 »)."),
    )

    class Meta:
        model = AdhesionSeason
        fields = ["label", "starts_on", "ends_on", "fee_kind", "amount", "payee"]
        widgets = {
            "starts_on": forms.DateInput(attrs={"type": "date"}),
            "ends_on": forms.DateInput(attrs={"type": "date"}),
        }

    def clean_tiers(self):
        rows = []
        for number, line in enumerate(self.cleaned_data["tiers"].splitlines(), start=1):
            if not line.strip():
                continue
            label, sep, amount = line.rpartition(":")
            try:
                value = Decimal(amount.strip().replace(",", ".").replace("€", ""))
            except ArithmeticError:
                value = None
            if not sep or not label.strip() or value is None or not value.is_finite() or value < 0:
                raise forms.ValidationError(_("Ligne %(n)s : écrivez « libellé : montant ».") % {"n": number})
            rows.append((label.strip()[:120], value.quantize(Decimal("0.01"))))
        return rows


class AdhesionForm(forms.Form):
    tier = forms.ChoiceField(label=_("Votre tranche"), required=False, widget=forms.RadioSelect)
    amount = forms.DecimalField(
        label=_("Montant choisi (€)"), required=False, min_value=0, max_digits=7, decimal_places=2
    )
    payment_mode = forms.ChoiceField(label=_("Mode de paiement"), choices=PaymentMode.choices)

    def __init__(self, *args, season: AdhesionSeason, **kwargs):
        super().__init__(*args, **kwargs)
        if season.fee_kind == AdhesionSeason.FeeKind.SLIDING:
            self.fields["tier"].choices = [(str(t.pk), f"{t.label} — {t.amount} €") for t in season.tiers.all()]
            self.fields["tier"].required = True
            del self.fields["amount"]
        else:
            del self.fields["tier"]
            if season.fee_kind == AdhesionSeason.FeeKind.FIXED:
                del self.fields["amount"]
            else:
                self.fields["amount"].initial = season.amount
                self.fields["amount"].help_text = _("Prix libre, %(min)s € au minimum.") % {"min": season.amount}


class MessageForm(forms.Form):
    audience = forms.ChoiceField(label=_("Destinataires"))
    param = forms.ChoiceField(label=_("Contrat ou précision"), required=False)
    kind = forms.ChoiceField(
        label=_("Nature"),
        choices=Message.Kind.choices,
        initial=Message.Kind.NEWS,
        widget=forms.RadioSelect,
        help_text=_(
            "Un message de service (organisation des distributions, votre contrat) n'est pas de la prospection : "
            "il est envoyé même aux personnes désinscrites des actualités. Les messages aux souscripteurs d'un "
            "contrat sont toujours des messages de service ; n'y mettez rien d'autre."
        ),
    )
    subject = forms.CharField(label=_("Objet"), max_length=200)
    body = forms.CharField(label=_("Message"), max_length=20000, widget=forms.Textarea(attrs={"rows": 8}))

    def __init__(self, *args, amap, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audience"].choices = [(a.key, a.label) for a in audiences()]
        params = [("", _("—"))]
        for a in audiences():
            if a.choices is not None:
                params += [(value, f"{a.label} : {label}") for value, label in a.choices(amap=amap)]
        self.fields["param"].choices = params
