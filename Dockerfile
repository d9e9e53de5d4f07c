# Monosign Gateway container image.
#
#   docker build -t monosign-gateway .
#   docker build --build-arg BASE_IMAGE=registry.internal/python:3.11-slim -t monosign-gateway .
#
# The base image is a build argument so the image can be built from a local or mirrored base where
# no public registry is reachable; it needs Python 3.11+ with the venv module. Dependencies are
# installed from docker/requirements.lock (exact versions, sha256-checked; the runtime part of uv.lock,
# which `./dev lock` regenerates). Configuration comes only from the environment and mounted secret files
# (NAME_FILE=/run/secrets/name); logs go to stdout. See docs/deployment.md.
ARG BASE_IMAGE=python:3.11-slim

# ---- build: a virtualenv with the locked dependencies and the gateway's wheel --------------------
FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY docker/build-requirements.lock docker/requirements.lock /src/docker/
RUN python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r docker/build-requirements.lock \
 && python3 -m venv /opt/monosign-gateway \
 && /opt/monosign-gateway/bin/pip install --require-hashes --no-deps --only-binary=:all: \
        -r docker/requirements.lock
COPY pyproject.toml README.md /src/
COPY gateway /src/gateway
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels /src \
 && /opt/monosign-gateway/bin/pip install --no-deps --no-index /tmp/wheels/*.whl \
 && /opt/monosign-gateway/bin/pip check \
 && /opt/monosign-gateway/bin/python -m pip uninstall --yes --quiet pip setuptools

# ---- runtime: the virtualenv, a non-root user, nothing else -------------------------------------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="Monosign Gateway" \
      org.opencontainers.image.description="Monosign second factor for Outlook on the web, as a reverse proxy"
# A fixed numeric id, so Kubernetes' runAsNonRoot can verify it and mounted secrets can be owned by it.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin gateway
COPY --from=build /opt/monosign-gateway /opt/monosign-gateway
COPY docker/healthcheck.py /opt/monosign-gateway/healthcheck.py
ENV PATH=/opt/monosign-gateway/bin:$PATH \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# An empty working directory: no .env is read unless an operator deliberately mounts one here.
WORKDIR /srv/monosign-gateway
USER 10001:10001
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/monosign-gateway/bin/python", "/opt/monosign-gateway/healthcheck.py"]
# Exec form: the gateway is PID 1 and receives SIGTERM from `docker stop` / Kubernetes directly.
ENTRYPOINT ["monosign-gateway"]
CMD ["serve"]
