from django.apps import AppConfig


class WidgetConfig(AppConfig):
    name = "widget"
    verbose_name = "Widget and full page"

    def ready(self):
        from widget import checks  # noqa: F401 - registers the system checks
