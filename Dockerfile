# syntax=docker/dockerfile:1
#
# One image for both processes (Procfile):
#   web (default CMD):  docker run -p 3000:3000 --env-file .env IMAGE
#   worker:             docker run --env-file .env IMAGE breakglass worker
#   anything else:      docker run --env-file .env IMAGE breakglass doctor
# In Kubernetes the worker Deployment sets `args: [breakglass, worker]` (deploy/base/worker.yaml).
#
# Base image: pinned by digest (the multi-arch index of python:3.11.14-slim-bookworm; the tag is kept
# for the reader, the digest decides), the same in both stages. To move to a newer base, take the
# new digest from `docker buildx imagetools inspect python:3.11.x-slim-bookworm` and change both
# FROM lines.
#
# Dependencies: `pip wheel -c requirements.lock` builds exactly the versions the tests ran on (CI
# installs with the same lock; its dev-tool pins are constraints only and never enter the image;
# tests/deploy/test_requirements_lock.py keeps it covering the closure and inside pyproject's ranges). Not `--require-hashes`: the image is built for several architectures, so the
# lock would need every platform's wheel hashes, which this checkout cannot produce from its one
# installed venv. The build backend (setuptools, from the build-system table) is still resolved
# from its range at build time; it builds the project's wheel and is not installed in the image.

# --- builder: wheels for the project and every dependency, installed into a venv -------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# .dockerignore lets in only what the wheel needs (pyproject.toml, README.md, bot/, workers/) and
# requirements.lock.
COPY . .
RUN pip wheel -c requirements.lock --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels breakglass

# --- runtime: the venv and nothing else; no compiler, no wheels, no pip cache -----------------
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS runtime

# checkov:skip=CKV_DOCKER_2: no HEALTHCHECK: one image runs web and worker and only web serves HTTP; Kubernetes ignores HEALTHCHECK and probes /healthz and /readyz itself (deploy/base/web.yaml)

# HOME=/tmp: the root filesystem is read-only in Kubernetes and /tmp is the one writable place
# (an emptyDir); gunicorn puts its control socket under $HOME.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PORT=3000

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd lookup.
RUN groupadd --system --gid 10001 breakglass \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin breakglass

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /tmp
EXPOSE 3000

# The Procfile's web line: settings and roster are checked first (one line naming what is wrong),
# then gunicorn serves 0.0.0.0:$PORT (or Socket Mode when SLACK_APP_TOKEN is set). No ENTRYPOINT, so
# any command given to `docker run` or as Kubernetes `args` replaces this one whole.
CMD ["breakglass", "web"]
