"""The « Rejoindre cette AMAP » block of an AMAP's public page, drawn by members.

The directory's page includes `members/_amap_public.html` (a template, not an import): the
directory never names this app in Python.
"""

from django import template
from django.contrib.messages import get_messages

from members import selectors
from members.models import Membership

register = template.Library()


@register.inclusion_tag("members/_amap_public_block.html", takes_context=True)
def amap_membership_block(context, amap):
    request = context.get("request")
    user = getattr(request, "user", None)
    membership = selectors.membership_of(user=user, amap=amap)
    return {
        "amap": amap,
        "user": user,
        "request": request,
        "membership": membership,
        "is_member": membership is not None and membership.status == Membership.Status.ACTIVE,
        "team": selectors.is_team(user, amap) if user is not None and user.is_authenticated else False,
        "contracts": list(selectors.open_contracts(amap=amap)),
        "waiting": amap.accepting_members != "open",
        # Joining and accepting an invitation come back here: their confirmation shows in this block
        # (the directory's page shows no messages of its own).
        "messages": get_messages(request) if request is not None else [],
    }
