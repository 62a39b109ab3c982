# Production image of kazoo-media-mgr: `docker build -t media-mgr .` then
# `docker run -p 24517:24517 -p 8000:8000 -e MEDIA_MGR_DATABASE_URL=postgresql://... media-mgr`
# Without MEDIA_MGR_DATABASE_URL it runs the embedded PostgreSQL under /var/lib/media-mgr (mount a volume);
# it runs as user 10001, so the embedded server changes nothing outside that folder.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MEDIA_MGR_DATA_DIR=/var/lib/media-mgr \
    MEDIA_MGR_BIND=0.0.0.0

# Probing and transcoding come from pip packages (PyAV, imageio-ffmpeg), so no Debian ffmpeg.
# sox and curl serve the shell_stream fetch script; libshout3 relays. Versions come from the pinned
# Debian release of the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends sox libsox-fmt-all curl libshout3 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY media_mgr ./media_mgr
COPY migrations ./migrations
COPY scripts ./scripts
# python-shout (relays to Icecast) builds against libshout; the build tools leave with the layer.
# The project itself is installed from this tree with its relay and embedded extras, hence no pin (DL3013).
# hadolint ignore=DL3008,DL3013
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libshout3-dev pkg-config \
    && pip install --no-cache-dir ".[relay,embedded]" \
    && apt-get purge -y --auto-remove gcc libc6-dev libshout3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 media-mgr \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/media-mgr --create-home media-mgr

USER 10001:10001
VOLUME ["/var/lib/media-mgr"]
EXPOSE 24517 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["sh", "-c", "curl -fsS http://127.0.0.1:${MEDIA_MGR_HTTP_PORT:-24517}/healthz || exit 1"]
ENTRYPOINT ["media-mgr"]
CMD ["serve"]
