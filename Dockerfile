# emotionsite image: the same code for the web process (daphne: HTTP + websockets) and the
# Celery worker; docker-compose.yml picks the command. Uploaded media and the generated secret
# key live in /data (a volume shared by web and worker).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBUG=False \
    DATA_DIR=/data \
    MEDIA_ROOT=/data/media

WORKDIR /app
# The wheels bring their own native libraries (OpenCV, PyAV's FFmpeg, libsndfile, TensorFlow).
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected at build time and served by whitenoise (no CDN, no extra server).
RUN SECRET_KEY=collectstatic-only DATA_DIR=/tmp/build python manage.py collectstatic --noinput -v 0 \
    && rm -rf /tmp/build \
    && useradd --create-home --uid 1000 app \
    && mkdir -p /data/media && chown -R app /data

USER app
VOLUME ["/data"]
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "emotionsite.asgi:application"]
