"""A conversation is named from its reader's side: each side reads the other's name (issue 17)."""

import pytest
from django.urls import reverse

from matching import services
from tests.factories import AmapFactory, FarmFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_each_side_reads_the_other_sides_name(client):
    farmer, referent = UserFactory(), UserFactory()
    farm = FarmFactory(name="EARL Les Serres du Coteau")
    farm.managers.add(farmer)
    amap = AmapFactory(name="AMAP des Quais")
    amap.managers.add(referent)
    thread = services.thread_start(user=farmer, recipient=amap, sender=farm, body="Bonjour")

    client.force_login(farmer)
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "<h1>Conversation avec AMAP des Quais</h1>" in page
    assert "EARL Les Serres du Coteau" not in page.split("<main")[1].split("thread-message")[0]
    assert "Conversation avec AMAP des Quais" in client.get(reverse("accounts:dashboard")).content.decode()

    client.force_login(referent)
    page = client.get(thread.get_absolute_url()).content.decode()
    assert "<h1>Conversation avec EARL Les Serres du Coteau</h1>" in page
    assert "Conversation avec EARL Les Serres du Coteau" in client.get(reverse("accounts:dashboard")).content.decode()
