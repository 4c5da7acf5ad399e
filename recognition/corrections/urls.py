"""Pages of the corrections (the API's are in recognition/api/urls.py)."""
from django.urls import path

from recognition.corrections import views

urlpatterns = [
    path("analyses/<int:pk>/corrections/", views.analysis_correct, name="analysis-correct"),
    path("corrections/", views.corrections_page, name="corrections"),
    path("corrections/export.zip", views.corrections_export, name="corrections-export"),
    path("corrections/sharing/", views.corrections_sharing, name="corrections-sharing"),
]
