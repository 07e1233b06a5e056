# For people who use Docker; `make demo` needs none of this.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gdal-bin libgdal32 libgeos-c1v5 libproj25 postgresql-client \
    libpango-1.0-0 libpangoft2-1.0-0 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Runtime set only (tests and tools are in requirements-dev.txt); .dockerignore keeps a dev .env out.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files collected (hashed, compressed) into the image once; the start script skips it.
RUN bash scripts/assets.sh && DEBUG=0 SECRET_KEY=build-only LOCATION_MASK_KEY=build-only python manage.py collectstatic --noinput
ENV COLLECTSTATIC=0
EXPOSE 8000
CMD ["bash", "scripts/serve.sh"]
