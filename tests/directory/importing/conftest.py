import pytest

from .support import import_gironde


@pytest.fixture
def gironde(db):
    return import_gironde()
