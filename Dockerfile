# The Synchro operator image: synchro.local/operator:<operator/synchro/__init__.__version__>.
#
#   docker build -t synchro.local/operator:0.1.0 .            (make kind-e2e)
#   buildah bud --build-arg BASE=oci-archive:... .            (hack/images.py, for make test's real node)
#
# BASE is any Debian-based image with python3, python3-venv and `python` on the PATH. The default is the
# upstream slim image; the local real-node tier passes a base built from Debian's packages (hack/images.py),
# so that no registry is needed. Both stages use the same base: the venv's python symlink points into it.
ARG BASE=python:3.11.14-slim-bookworm

# ---- builder: the pinned runtime dependencies, in a venv that the final stage copies as is.
FROM ${BASE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements-runtime.txt /tmp/requirements-runtime.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements-runtime.txt
COPY operator/synchro /opt/synchro/synchro
# The root filesystem is read-only at runtime: compile now, so Python never tries to write .pyc files.
RUN /opt/venv/bin/python -m compileall -q /opt/synchro

# ---- final: the same base, no pip cache, no build tools. The operator's sources come last: a change to them
# rebuilds one layer here (with buildah's vfs storage, each layer costs a full copy of the root filesystem).
FROM ${BASE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/synchro \
    PYTHONUNBUFFERED=1
# A passwd entry for uid 65532: kopf calls getpass.getuser(), which fails for a uid without one.
RUN useradd --system --uid 65532 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin synchro
WORKDIR /opt/synchro
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/opt/venv/bin/python", "-m", "synchro"]
CMD ["run"]
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/synchro /opt/synchro
