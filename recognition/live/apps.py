from django.apps import AppConfig


class LiveConfig(AppConfig):
    """The live page's websocket (/ws/live/): wire format, scheduling, the session recorder."""

    name = "recognition.live"
    label = "live"

    def ready(self) -> None:
        from recognition.live import pipeline, sockets  # noqa: F401 - sockets: closes them on logout
        from recognition.operations import warmup

        # After the models, a web server warms one thread of the live pool (its detector is per thread).
        warmup.after_warm_up(lambda: pipeline.executor().submit(pipeline.warm_up))
