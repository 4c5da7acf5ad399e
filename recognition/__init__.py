"""The product's Django apps, one per domain (docs/architecture.md draws the arrows):

- ``inference``   the machine-learning core: a plain library, no Django (config.py takes settings)
- ``operations``  health and readiness, metrics, logs, request ids, CSP, model warm-up
- ``accounts``    sign-up, log-in, two-factor, consent, retention policy, the account page
- ``analyses``    uploads, storage, Celery tasks, result pages, history, dashboard, exports
- ``corrections`` a person's true emotions for their results, agreement, the training dataset
- ``live``        the live page's websocket: wire format, scheduling, recorder
- ``api``         the REST API (DRF): views, serializers, throttles, errors, schema
"""
