"""General pages that belong to no single feature."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    """What the site does, with calls to action for visitors and signed-in people."""
    return render(request, "home.html")
