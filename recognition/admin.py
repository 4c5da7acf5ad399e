from django.contrib import admin

from .models import AccountSettings, Analysis, Correction


@admin.register(Analysis)
class AnalysisAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "kind", "status", "emotion", "created")
    list_filter = ("kind", "status", "emotion")
    search_fields = ("owner__username", "original_name", "sha256")
    readonly_fields = ("uid", "sha256", "created", "started", "finished")


@admin.register(Correction)
class CorrectionAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "analysis", "item", "task", "label", "predicted", "model_version", "updated")
    list_filter = ("task", "label")
    search_fields = ("owner__username",)
    readonly_fields = ("created", "updated")


@admin.register(AccountSettings)
class AccountSettingsAdmin(admin.ModelAdmin):
    list_display = ("user", "share_corrections", "updated")
    list_filter = ("share_corrections",)
