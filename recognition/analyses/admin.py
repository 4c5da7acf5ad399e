from django.contrib import admin

from recognition.analyses.models import Analysis


@admin.register(Analysis)
class AnalysisAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "kind", "status", "emotion", "created")
    list_filter = ("kind", "status", "emotion")
    search_fields = ("owner__username", "original_name", "sha256")
    readonly_fields = ("uid", "sha256", "created", "started", "finished")
