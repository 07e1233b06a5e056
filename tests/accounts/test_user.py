from django.contrib.auth import authenticate

from accounts.models import User


def test_people_log_in_with_their_email_address(db):
    User.objects.create_user("Marie.Dupont@Example.org", "un-mot-de-passe-solide")
    user = authenticate(email="marie.dupont@example.org", password="un-mot-de-passe-solide")
    assert user is not None
    assert user.email == "marie.dupont@example.org"
    assert not hasattr(user, "username") or user.username is None


def test_superuser_is_staff(db):
    admin = User.objects.create_superuser("admin@example.org", "secret-de-test-123")
    assert admin.is_staff and admin.is_superuser
