"""Page routes of the app (HTML). Each area keeps its views in its own module under views/."""
from django.urls import path

from .views import pages

urlpatterns = [
    path("", pages.home, name="home"),
]
