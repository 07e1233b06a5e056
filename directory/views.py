from django.shortcuts import render

from .models import Amap, Farm, Network


def home(request):
    """The front page: one search box, and what the directory holds."""
    context = {
        "amap_count": Amap.objects.active().count(),
        "farm_count": Farm.objects.active().count(),
        "network_count": Network.objects.count(),
    }
    return render(request, "directory/home.html", context)
