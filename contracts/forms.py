"""Forms of the contract pages (the API has its own serializers; both call the same services)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import formats
from django.utils.translation import gettext_lazy as _

from directory.models import Amap, Farm, ProductCategory, Weekday

from .models import (
    MAX_CAPACITY_SHARES,
    MAX_INSTALMENTS,
    AcademicCalendar,
    CalendarException,
    Contract,
    Delivery,
    PaymentMethod,
    Subscription,
)

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
TIME_INPUT = forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
_DATE_RE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4})\s*[-–—:]?\s*(.*)$")
MAX_EXCEPTIONS = 200


def parse_date_lines(text: str) -> list[tuple[dt.date, str]]:
    """One date a line (« 2027-05-25 » or « 25/05/2027 »), optionally followed by a label.

    Raises a French `ValidationError` naming the line that cannot be read.
    """
    rows: list[tuple[dt.date, str]] = []
    seen: set[dt.date] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _DATE_RE.match(line)
        if not match:
            raise ValidationError(
                _("Ligne %(n)s : « %(line)s » ne commence pas par une date (JJ/MM/AAAA)."),
                params={"n": number, "line": line.strip()[:40]},
            )
        raw, label = match.groups()
        try:
            if "/" in raw:
                day, month, year = (int(part) for part in raw.split("/"))
                value = dt.date(year, month, day)
            else:
                value = dt.date.fromisoformat(raw)
        except ValueError:
            raise ValidationError(
                _("Ligne %(n)s : « %(date)s » n'est pas une date du calendrier."), params={"n": number, "date": raw}
            ) from None
        if value in seen:
            continue
        seen.add(value)
        rows.append((value, label.strip()[:200]))
    if len(rows) > MAX_EXCEPTIONS:
        raise ValidationError(_("Au plus %(n)s dates."), params={"n": MAX_EXCEPTIONS})
    return rows


def format_date_lines(rows) -> str:
    return "\n".join(f"{day:%d/%m/%Y} {label}".strip() for day, label in rows)


class ContractForm(forms.Form):
    """A contract template for one AMAP: farm, season, calendar, payment, référent (products: ProductFormSet)."""

    title = forms.CharField(label=_("Intitulé"), max_length=200, help_text=_("Par exemple « Légumes saison 2027 »."))
    farm = forms.ModelChoiceField(
        label=_("Ferme partenaire"), queryset=Farm.objects.none(), required=False, empty_label=_("— choisir —")
    )
    other_farm = forms.CharField(
        label=_("Ou une autre ferme (nom exact ou numéro)"),
        max_length=200,
        required=False,
        help_text=_("Pour une ferme de l'annuaire qui n'est pas encore partenaire de l'AMAP."),
    )
    season_start = forms.DateField(label=_("Début de la saison"), widget=DATE_INPUT)
    season_end = forms.DateField(label=_("Fin de la saison"), widget=DATE_INPUT)
    weekday = forms.TypedChoiceField(label=_("Jour de distribution"), choices=Weekday.choices, coerce=int)
    frequency = forms.ChoiceField(label=_("Fréquence"), choices=Contract.Frequency.choices)
    exclude_public_holidays = forms.BooleanField(
        label=_("Pas de distribution les jours fériés"), required=False, initial=True
    )
    academic_calendar = forms.ModelChoiceField(
        label=_("Calendrier universitaire"),
        queryset=AcademicCalendar.objects.none(),
        required=False,
        empty_label=_("— aucun —"),
        help_text=_("AMAP étudiante : pas de distribution pendant les vacances et les examens de ce calendrier."),
    )
    chosen_dates = forms.CharField(
        label=_("Dates retirées par l'AMAP"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Une date par ligne (JJ/MM/AAAA), suivie si besoin d'une précision : « 25/12/2027 Noël »."),
    )
    closure_dates = forms.CharField(
        label=_("Fermetures de la ferme"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Une date par ligne (JJ/MM/AAAA), suivie si besoin d'une précision."),
    )
    delivery_place = forms.CharField(label=_("Lieu de distribution"), max_length=300, required=False)
    delivery_start = forms.TimeField(label=_("Début de distribution"), required=False, widget=TIME_INPUT)
    delivery_end = forms.TimeField(label=_("Fin de distribution"), required=False, widget=TIME_INPUT)
    capacity_shares = forms.IntegerField(
        label=_("Nombre de parts"), min_value=1, max_value=MAX_CAPACITY_SHARES, help_text=_("Au-delà, liste d'attente.")
    )
    instalments_max = forms.IntegerField(
        label=_("Nombre maximal de versements"), min_value=1, max_value=MAX_INSTALMENTS, initial=1
    )
    payment_methods = forms.MultipleChoiceField(
        label=_("Moyens de paiement acceptés"),
        choices=PaymentMethod.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[PaymentMethod.CHEQUE],
    )
    payment_payee = forms.CharField(label=_("Ordre des chèques / bénéficiaire"), max_length=200, required=False)
    subscription_deadline = forms.DateField(label=_("Date limite de souscription"), required=False, widget=DATE_INPUT)
    requires_membership = forms.BooleanField(
        label=_("Adhésion à l'AMAP obligatoire"),
        required=False,
        help_text=_("Seules les personnes dont l'adhésion de la saison est réglée peuvent souscrire."),
    )
    referent = forms.ModelChoiceField(label=_("Référent·e"), queryset=None, empty_label=None)
    description = forms.CharField(label=_("Présentation"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    commitments = forms.CharField(
        label=_("Engagements particuliers"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Ce que chaque partie s'engage à faire en plus de la charte (apparaît dans le contrat signé)."),
    )

    def __init__(self, *args, amap: Amap, **kwargs):
        super().__init__(*args, **kwargs)
        from accounts.models import User

        self.amap = amap
        partner_ids = amap.partnerships.filter(is_active=True).values("farm_id")
        self.fields["farm"].queryset = Farm.objects.filter(pk__in=partner_ids).order_by("name", "pk")
        self.fields["referent"].queryset = User.objects.filter(amap_roles__amap=amap).order_by("display_name", "pk")
        if amap.kind == Amap.Kind.STUDENT:
            self.fields["academic_calendar"].queryset = AcademicCalendar.objects.filter(
                Q(amap=amap) | Q(amap__isnull=True)
            )
        else:
            del self.fields["academic_calendar"]

    def clean_other_farm(self):
        text = self.cleaned_data["other_farm"].strip()
        if not text:
            return None
        number = re.sub(r"^(#|n°|no)\s*", "", text, flags=re.IGNORECASE)
        if number.isdigit():
            farm = Farm.objects.filter(pk=int(number)).first()
            if farm is None:
                raise ValidationError(_("Aucune ferme n°%(n)s dans l'annuaire."), params={"n": number})
            return farm
        farms = list(Farm.objects.filter(name__iexact=text)[:2])
        if not farms:
            raise ValidationError(_("Aucune ferme de l'annuaire ne s'appelle « %(name)s »."), params={"name": text})
        if len(farms) > 1:
            raise ValidationError(
                _("Plusieurs fermes s'appellent « %(name)s » : indiquez son numéro."), params={"name": text}
            )
        return farms[0]

    def clean_chosen_dates(self):
        return parse_date_lines(self.cleaned_data["chosen_dates"])

    def clean_closure_dates(self):
        return parse_date_lines(self.cleaned_data["closure_dates"])

    def clean(self):
        data = super().clean()
        farm, other = data.get("farm"), data.get("other_farm")
        if farm is None and other is None and "other_farm" not in self.errors:
            self.add_error("farm", _("Choisissez la ferme du contrat."))
        elif farm is not None and other is not None and farm != other:
            self.add_error("other_farm", _("Choisissez une seule ferme."))
        data["farm"] = farm or other
        start, end = data.get("season_start"), data.get("season_end")
        if start and end and end <= start:
            self.add_error("season_end", _("La fin de la saison doit suivre son début."))
        begin, finish = data.get("delivery_start"), data.get("delivery_end")
        if begin and finish and finish <= begin:
            self.add_error("delivery_end", _("L'heure de fin doit suivre l'heure de début."))
        return data

    def exceptions(self) -> list[tuple[dt.date, str, str]]:
        """(date, kind, label) for `contract_create(exceptions=…)`."""
        data = self.cleaned_data
        rows = [(day, CalendarException.Kind.CHOSEN, label) for day, label in data.get("chosen_dates") or []]
        chosen = {day for day, _kind, _label in rows}
        rows += [
            (day, CalendarException.Kind.FARM_CLOSURE, label)
            for day, label in data.get("closure_dates") or []
            if day not in chosen
        ]
        return sorted(rows)

    def service_fields(self) -> dict:
        """Keyword arguments for `services.contract_create` / `contract_update` (products apart)."""
        data = dict(self.cleaned_data)
        for key in ("other_farm", "chosen_dates", "closure_dates"):
            data.pop(key, None)
        data["exceptions"] = self.exceptions()
        return data

    @staticmethod
    def initial_from(contract: Contract) -> dict:
        initial = {
            field: getattr(contract, field)
            for field in Contract.EDITABLE_FIELDS
            if field not in Contract.EDITABLE_RELATIONS
        }
        initial["referent"] = contract.referent_id
        initial["academic_calendar"] = contract.academic_calendar_id
        if contract.amap.partnerships.filter(farm_id=contract.farm_id, is_active=True).exists():
            initial["farm"] = contract.farm_id
        else:
            initial["other_farm"] = str(contract.farm_id)
        exceptions = list(contract.exceptions.all())
        initial["chosen_dates"] = format_date_lines(
            (e.date, e.label) for e in exceptions if e.kind == CalendarException.Kind.CHOSEN
        )
        initial["closure_dates"] = format_date_lines(
            (e.date, e.label) for e in exceptions if e.kind == CalendarException.Kind.FARM_CLOSURE
        )
        return initial


class ContractOpenForm(forms.Form):
    """What may still change once a contract is open: its texts, more shares, the référent."""

    capacity_shares = forms.IntegerField(label=_("Nombre de parts"), min_value=1, max_value=MAX_CAPACITY_SHARES)
    referent = forms.ModelChoiceField(label=_("Référent·e"), queryset=None, empty_label=None)
    description = forms.CharField(label=_("Présentation"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    commitments = forms.CharField(
        label=_("Engagements particuliers"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args, contract: Contract, **kwargs):
        super().__init__(*args, **kwargs)
        from accounts.models import User

        self.contract = contract
        self.fields["referent"].queryset = User.objects.filter(amap_roles__amap=contract.amap_id).order_by(
            "display_name", "pk"
        )

    def clean_capacity_shares(self):
        value = self.cleaned_data["capacity_shares"]
        if value < self.contract.capacity_shares:
            raise ValidationError(
                _("Une fois le contrat ouvert, le nombre de parts peut seulement augmenter (%(n)s aujourd'hui)."),
                params={"n": self.contract.capacity_shares},
            )
        return value


class ProductForm(forms.Form):
    id = forms.IntegerField(widget=forms.HiddenInput, required=False)  # an existing product keeps its row
    name = forms.CharField(label=_("Produit"), max_length=120, required=False)
    unit_price = forms.DecimalField(
        label=_("Prix unitaire (€)"), min_value=Decimal("0.01"), max_digits=8, decimal_places=2, required=False
    )
    category = forms.ModelChoiceField(
        label=_("Catégorie"),
        queryset=ProductCategory.objects.order_by("position", "name"),
        required=False,
        empty_label=_("—"),
    )
    max_quantity = forms.IntegerField(
        label=_("Quantité max. par distribution"), min_value=1, max_value=100, initial=10, required=False
    )

    def clean(self):
        data = super().clean()
        if data.get("name") and data.get("unit_price") is None and "unit_price" not in self.errors:
            self.add_error("unit_price", _("Indiquez le prix de ce produit."))
        if data.get("unit_price") is not None and not data.get("name"):
            self.add_error("name", _("Nommez ce produit."))
        return data


class _BaseProductFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        names = [f.cleaned_data.get("name", "").strip().lower() for f in self.forms if f.cleaned_data.get("name")]
        if not names:
            raise ValidationError(_("Indiquez au moins un produit avec son prix."))
        if len(names) != len(set(names)):
            raise ValidationError(_("Deux produits portent le même nom."))

    def products(self) -> list[dict]:
        """`[{"name", "unit_price", "category", "max_quantity"}]` for the services, in the order shown."""
        return [
            {
                "id": f.cleaned_data.get("id"),
                "name": f.cleaned_data["name"].strip(),
                "unit_price": f.cleaned_data["unit_price"],
                "category": f.cleaned_data.get("category"),
                "max_quantity": f.cleaned_data.get("max_quantity") or 10,
            }
            for f in self.forms
            if f.cleaned_data.get("name")
        ]


ProductFormSet = forms.formset_factory(ProductForm, formset=_BaseProductFormSet, extra=4, max_num=30, validate_max=True)


def product_initial(contract: Contract) -> list[dict]:
    return [
        {
            "id": p.pk,
            "name": p.name,
            "unit_price": p.unit_price,
            "category": p.category_id,
            "max_quantity": p.max_quantity,
        }
        for p in contract.products.all()
    ]


class SubscriptionForm(forms.Form):
    """A member's choice: a quantity per product, the rhythm, the payment schedule."""

    pattern = forms.ChoiceField(
        label=_("Rythme"),
        choices=[
            (Subscription.Pattern.SAME, Subscription.Pattern.SAME.label),
            (Subscription.Pattern.ALTERNATE, Subscription.Pattern.ALTERNATE.label),
        ],
        initial=Subscription.Pattern.SAME,
        widget=forms.RadioSelect,
    )
    shares = forms.IntegerField(
        label=_("Parts"), min_value=1, max_value=10, initial=1, help_text=_("Une part par foyer en général.")
    )
    instalments = forms.TypedChoiceField(label=_("Nombre de versements"), coerce=int, choices=[(1, "1")])
    payment_method = forms.ChoiceField(label=_("Moyen de paiement"), choices=PaymentMethod.choices)

    def __init__(self, *args, contract: Contract, varying_deliveries: list[Delivery] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.contract = contract
        self.products = list(contract.products.all())
        self.varying_deliveries = varying_deliveries
        for product in self.products:
            self.fields[f"product_{product.pk}"] = forms.IntegerField(
                label=f"{product.name} ({formats.number_format(product.unit_price, 2)} €)",
                min_value=0,
                max_value=product.max_quantity,
                initial=0,
                required=False,
            )
        if varying_deliveries is not None:
            del self.fields["pattern"]
            for delivery in varying_deliveries:
                for product in self.products:
                    self.fields[self.cell_name(delivery, product)] = forms.IntegerField(
                        label=f"{product.name}, {delivery.date:%d/%m/%Y}",
                        min_value=0,
                        max_value=product.max_quantity,
                        initial=0,
                        required=False,
                    )
        self.fields["instalments"].choices = [(n, str(n)) for n in range(1, contract.instalments_max + 1)]
        methods = contract.payment_methods or [PaymentMethod.CHEQUE]
        self.fields["payment_method"].choices = [(m, PaymentMethod(m).label) for m in methods]

    @staticmethod
    def cell_name(delivery: Delivery, product) -> str:
        return f"d{delivery.pk}_p{product.pk}"

    def product_fields(self):
        return [self[f"product_{product.pk}"] for product in self.products]

    def rows(self):
        """The per-delivery table: (delivery, [bound field per product])."""
        return [
            (delivery, [self[self.cell_name(delivery, product)] for product in self.products])
            for delivery in self.varying_deliveries or []
        ]

    def clean(self):
        data = super().clean()
        quantities = {p.pk: data.get(f"product_{p.pk}") or 0 for p in self.products}
        data["quantities"] = {pk: qty for pk, qty in quantities.items() if qty}
        if self.varying_deliveries is not None:
            per_delivery = {}
            for delivery in self.varying_deliveries:
                cells = {p.pk: data.get(self.cell_name(delivery, p)) or 0 for p in self.products}
                cells = {pk: qty for pk, qty in cells.items() if qty}
                if cells:
                    per_delivery[delivery.pk] = cells
            if not per_delivery and not self.errors:
                raise ValidationError(_("Choisissez au moins un produit pour au moins une distribution."))
            data["pattern"] = Subscription.Pattern.VARYING
            data["per_delivery"] = per_delivery
        elif not data["quantities"] and not self.errors:
            raise ValidationError(_("Choisissez au moins un produit."))
        return data

    def service_fields(self) -> dict:
        data = self.cleaned_data
        fields = {
            "quantities": data["quantities"] or None,
            "pattern": data["pattern"],
            "shares": data["shares"],
            "instalments": data["instalments"],
            "payment_method": data["payment_method"],
        }
        if data["pattern"] == Subscription.Pattern.VARYING:
            fields["per_delivery"] = data["per_delivery"]
        return fields


class AmendmentForm(forms.Form):
    """New quantities from a date on; the deliveries before it stay as signed."""

    effective_from = forms.DateField(label=_("À partir du"), widget=DATE_INPUT)
    pattern = forms.ChoiceField(
        label=_("Rythme"),
        choices=[
            (Subscription.Pattern.SAME, Subscription.Pattern.SAME.label),
            (Subscription.Pattern.ALTERNATE, Subscription.Pattern.ALTERNATE.label),
        ],
        initial=Subscription.Pattern.SAME,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, contract: Contract, **kwargs):
        super().__init__(*args, **kwargs)
        self.products = list(contract.products.all())
        for product in self.products:
            self.fields[f"product_{product.pk}"] = forms.IntegerField(
                label=f"{product.name} ({formats.number_format(product.unit_price, 2)} €)",
                min_value=0,
                max_value=product.max_quantity,
                initial=0,
                required=False,
            )

    def product_fields(self):
        return [self[f"product_{product.pk}"] for product in self.products]

    def quantities(self) -> dict[int, int]:
        """Product id → quantity; empty stops the deliveries from that date."""
        data = self.cleaned_data
        return {p.pk: data[f"product_{p.pk}"] for p in self.products if data.get(f"product_{p.pk}")}


class SignatureRequestForm(forms.Form):
    charter_accepted = forms.BooleanField(
        label=_("J'ai lu la Charte des AMAP et je m'engage à la respecter."),
        required=True,
        error_messages={"required": _("Acceptez la charte pour signer.")},
    )


class SignatureCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code reçu par e-mail"),
        max_length=12,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def clean_code(self):
        return re.sub(r"\s+", "", self.cleaned_data["code"])


class AbsenceForm(forms.Form):
    delivery = forms.ModelChoiceField(label=_("Distribution"), queryset=Delivery.objects.none(), empty_label=None)
    substitute_name = forms.CharField(label=_("Qui vient à ma place (facultatif)"), max_length=200, required=False)
    note = forms.CharField(label=_("Remarque"), max_length=300, required=False)

    def __init__(self, *args, deliveries, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["delivery"].queryset = deliveries


class DeliveryMarkForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Nouvel état"),
        choices=[
            (Delivery.Status.DONE, _("effectuée")),
            (Delivery.Status.POSTPONED, _("reportée")),
            (Delivery.Status.CANCELLED, _("annulée (aléa de production)")),
        ],
    )
    new_date = forms.DateField(label=_("Nouvelle date (report)"), required=False, widget=DATE_INPUT)
    note = forms.CharField(label=_("Motif"), max_length=300, required=False)

    def clean(self):
        data = super().clean()
        if data.get("status") == Delivery.Status.POSTPONED and not data.get("new_date"):
            self.add_error("new_date", _("Indiquez la nouvelle date de la distribution reportée."))
        return data


SUMMARY_BY = {
    "date": _("par date"),
    "product": _("par produit"),
    "member": _("par adhérent·e"),
    "farmer": _("par ferme"),
}


class SummaryForm(forms.Form):
    by = forms.ChoiceField(label=_("Regrouper"), choices=list(SUMMARY_BY.items()), initial="date", required=False)
    start = forms.DateField(label=_("Du"), required=False, widget=DATE_INPUT)
    end = forms.DateField(label=_("Au"), required=False, widget=DATE_INPUT)

    def clean(self):
        data = super().clean()
        data["by"] = data.get("by") or "date"
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", _("La fin de la période doit suivre son début."))
        return data


MAX_PDF_BYTES = 20 * 1024 * 1024


class VerifyForm(forms.Form):
    pdf = forms.FileField(label=_("Contrat signé (PDF)"))

    def clean_pdf(self):
        upload = self.cleaned_data["pdf"]
        if upload.size > MAX_PDF_BYTES:
            raise ValidationError(_("Fichier trop lourd (20 Mo au plus)."))
        return upload.read()


class ErasureForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Je comprends que mes données seront effacées ou anonymisées, et que cela ne peut pas être annulé."),
        required=True,
        error_messages={"required": _("Cochez la case pour confirmer la demande.")},
    )
