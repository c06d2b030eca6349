# One image, every process of a lineage deployment; the command picks the role:
#
#   lineage serve --host 0.0.0.0 --port 5000      the HTTP API (probes: /healthz, /readyz; /metrics)
#   lineage derive --listen 0.0.0.0:9400          a derivation worker (probes and /metrics on 9400)
#   lineage db upgrade                            migrations, as the owner role (LINEAGE_MIGRATION_DATABASE_URL)
#   lineage maintain partitions                   creates time partitions ahead (a daily job)
#
# Configuration comes only from the environment (LINEAGE_*, see lineage/config.py): nothing
# secret is baked in. The image's HEALTHCHECK fetches $HEALTHCHECK_URL (the API's /healthz by
# default; the worker's is http://127.0.0.1:9400/healthz); Kubernetes uses the probes in
# deploy/kubernetes instead. Build from the repository root:
#
#   docker build -t registry.example.com/ml-platform/lineage:0.1.0 .

# -- build: a wheel of this checkout -------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lineage ./lineage
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# -- run -----------------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LINEAGE_HOME=/var/lib/lineage \
    HEALTHCHECK_URL=http://127.0.0.1:5000/healthz
# A fixed numeric uid so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
RUN groupadd --system --gid 10001 lineage \
    && useradd --system --uid 10001 --gid lineage --home-dir /var/lib/lineage --shell /usr/sbin/nologin lineage \
    && install -d -o lineage -g lineage -m 0750 /var/lib/lineage
COPY --from=build /dist/ /tmp/dist/
# The dependencies are pinned in pyproject.toml; the wheel brings them.
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
USER 10001:10001
WORKDIR /var/lib/lineage
EXPOSE 5000 9400
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["lineage"]
CMD ["serve", "--host", "0.0.0.0", "--port", "5000"]
