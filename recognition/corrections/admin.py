from django.contrib import admin

from recognition.corrections.models import AccountSettings, Correction


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
