# One image for `securitybot serve`, `aer worker`, `migrate` and `demo` (docs/deploy.md, "2. The
# container image"): the wheel installed into a virtualenv on a slim Python base, run as a
# non-root user. Configuration: environment (SECURITYBOT_<SECTION>__<KEY>, *_FILE for secrets)
# and an optional file mounted at /etc/securitybot/config.yaml.
#
#   podman build -t securitybot .            (or docker build)
#   podman run --rm -p 8000:8000 -e SECURITYBOT_DATABASE__URL_FILE=/run/secrets/db_url ... securitybot
#
# BASE_IMAGE: any Debian-based image with python3 (3.11+) and its venv module. CI, which can pull
# no registry image, builds one from Debian's packages (.ci/ship-image).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# PIP_OPTIONS: e.g. "--no-index --find-links /src/wheels" to install only from wheels placed in
# the build context beforehand (wheels/, as CI does); by default pip uses the package index.
ARG PIP_OPTIONS=""
WORKDIR /src
COPY . .
# The project's wheel, unless the context brings one (wheels/securitybot-*.whl); then the app and
# its dependencies (the demo extra: the fakes' TLS CA) into /opt/securitybot, without pip itself.
RUN set -eux; \
    python3 -m venv /opt/build; \
    ls wheels/securitybot-*.whl 2>/dev/null \
      || /opt/build/bin/pip wheel --no-cache-dir --no-deps $PIP_OPTIONS --wheel-dir wheels .; \
    python3 -m venv /opt/securitybot; \
    /opt/securitybot/bin/pip install --no-cache-dir $PIP_OPTIONS "$(ls wheels/securitybot-*.whl)[demo]"; \
    /opt/securitybot/bin/pip uninstall --yes pip setuptools; \
    /opt/securitybot/bin/securitybot --version

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="securitybot" \
      org.opencontainers.image.description="Ask the person who did it: Slack DM + Duo/Okta push verification for security alerts" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/securitybot --create-home \
      --shell /usr/sbin/nologin securitybot
COPY --from=build /opt/securitybot /opt/securitybot
ENV PATH=/opt/securitybot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SECURITYBOT_CONFIG=/etc/securitybot/config.yaml \
    SECURITYBOT_SERVER__HOST=0.0.0.0 \
    SECURITYBOT_SERVER__PORT=8000 \
    SECURITYBOT_LOGGING__JSON=true
# The working directory is the only place the process writes to (an SQLite file, if you use
# one; PostgreSQL needs none), so the root filesystem can be read-only.
WORKDIR /var/lib/securitybot
USER 10001:10001
EXPOSE 8000
# For `serve` (an `aer worker` or `migrate` container has no HTTP port: turn it off there).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SECURITYBOT_SERVER__PORT', '8000'), timeout=4)"]
ENTRYPOINT ["securitybot"]
CMD ["serve"]
