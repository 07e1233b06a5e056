"""factory_boy factories placing objects in real French places (territories are loaded)."""

import factory
from django.contrib.gis.geos import Point

from accounts.models import User
from directory.models import Amap, Farm, Network, Partnership, ProductCategory
from geo.models import Commune

BORDEAUX = Point(-0.5792, 44.8378, srid=4326)  # Place de la Comédie, Bordeaux (33063)
MERIGNAC = Point(-0.6440, 44.8386, srid=4326)  # Mérignac centre (33281)
LIBOURNE = Point(-0.2430, 44.9150, srid=4326)  # Libourne (33243)


def commune(code: str) -> Commune:
    return Commune.objects.get(code=code)


def product(slug: str) -> ProductCategory:
    return ProductCategory.objects.get(slug=slug)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"personne{n}@example.org")
    display_name = factory.Faker("name", locale="fr_FR")
    password = factory.django.Password("motdepasse-test")


class NetworkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Network
        skip_postgeneration_save = True
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Réseau test {n}")
    slug = factory.Sequence(lambda n: f"reseau-test-{n}")
    level = Network.Level.DEPARTMENTAL

    @factory.post_generation
    def departments(self, create, extracted, **kwargs):
        if create and extracted:
            self.departments.set(extracted)


class AmapFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Amap
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"AMAP test {n}")
    location = BORDEAUX
    commune = factory.LazyFunction(lambda: commune("33063"))
    status = Amap.Status.ACTIVE
    accepting_members = Amap.Accepting.OPEN
    delivery_weekdays = factory.LazyFunction(lambda: [2])  # mardi

    @factory.post_generation
    def products(self, create, extracted, **kwargs):
        if create and extracted:
            self.products.set([product(p) if isinstance(p, str) else p for p in extracted])


class FarmFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Farm
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Ferme test {n}")
    location = LIBOURNE
    commune = factory.LazyFunction(lambda: commune("33243"))
    external_id = factory.Sequence(lambda n: f"farm-{n}")
    delivery_radius_km = 40

    @factory.post_generation
    def products(self, create, extracted, **kwargs):
        if create and extracted:
            self.products.set([product(p) if isinstance(p, str) else p for p in extracted])


class PartnershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partnership

    amap = factory.SubFactory(AmapFactory)
    farm = factory.SubFactory(FarmFactory)
    product = factory.LazyFunction(lambda: product("legumes"))
