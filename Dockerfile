# The Synchro operator image: synchro.local/operator:<operator/synchro/__init__.__version__>.
#
# This machine has no Docker engine. The local real-node tier builds the same layout without one:
# hack/images.py assembles a Debian root filesystem with umoci (venv in /opt/venv, the package in
# /opt/synchro, user 65532, `python -m synchro`). This file is for building with Docker/BuildKit:
#   docker build -t synchro.local/operator:0.1.0 .

# ---- builder: the pinned runtime dependencies, in a venv that the final stage copies as is.
FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements-runtime.txt /tmp/requirements-runtime.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-runtime.txt
COPY operator/synchro /opt/synchro/synchro
# The root filesystem is read-only at runtime: compile now, so Python never tries to write .pyc files.
RUN /opt/venv/bin/python -m compileall -q /opt/synchro

# ---- final: the same base (the venv's python symlink points into it), no pip cache, no build tools.
FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/synchro \
    PYTHONUNBUFFERED=1
# A passwd entry for uid 65532: kopf calls getpass.getuser(), which fails for a uid without one.
RUN useradd --system --uid 65532 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin synchro
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/synchro /opt/synchro
WORKDIR /opt/synchro
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/opt/venv/bin/python", "-m", "synchro"]
CMD ["run"]
