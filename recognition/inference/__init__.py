"""The inference core: one module used by training, pages, API, Celery workers and the websocket.

- ``preprocessing``: face crop -> model input (imported by training too)
- ``registry``: model cards, the served model per task, loaded once per process
- ``faces``: ``analyze_image(image)`` -> every face with box, emotion, probabilities
- ``voice`` / ``audio``: ``analyze_audio(data)`` -> overall emotion, probabilities, windows
- ``errors.InvalidMedia``: unusable input, with a message fit for the person who sent it

Heavy libraries (TensorFlow) are imported lazily so that importing this package is cheap.
"""
