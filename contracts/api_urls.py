"""/api/v1/contracts/… (mounted by config/api_urls.py; every route is in the permission matrix test)."""

from rest_framework.routers import SimpleRouter

from .api import ContractViewSet, SubscriptionViewSet

router = SimpleRouter()
router.register("contracts/subscriptions", SubscriptionViewSet, basename="contract-subscription")
router.register("contracts", ContractViewSet, basename="contract")

urlpatterns = router.urls
