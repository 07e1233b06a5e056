from rest_framework.routers import SimpleRouter

from .api import AnnonceViewSet

router = SimpleRouter()
router.register("annonces", AnnonceViewSet, basename="annonce")

urlpatterns = router.urls
