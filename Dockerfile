# syntax=docker/dockerfile:1
# Pingtai's one image: every part runs from it, chosen by the command's argument.
#
#   docker build -t pingtai:0.1.0 .
#   docker run --rm -p 8000:8000 pingtai:0.1.0                 # the gateway
#   docker run --rm pingtai:0.1.0 serve identity
#   docker run --rm pingtai:0.1.0 migrate identity
#
# It runs as an unprivileged user (10001) and writes only to /tmp and /app/var, so it works with
# a read-only root filesystem when those two are mounted (deploy/k8s mounts emptyDirs there).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the project and its pinned dependencies into a virtual environment --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Every dependency ships manylinux wheels for CPython 3.11, so no compiler is needed here either.
RUN python -m venv /opt/pingtai
ENV PATH=/opt/pingtai/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY libs ./libs
COPY services ./services
COPY gateway ./gateway
COPY portal ./portal
COPY pingtai ./pingtai
# Byte-compile now: at run time the root filesystem is read-only.
RUN pip install --no-cache-dir --upgrade "pip>=24" \
    && pip install --no-cache-dir -c constraints.txt . \
    && python -m compileall -q /opt/pingtai

# --- runtime: the interpreter, the virtual environment and nothing else ------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="pingtai" \
      org.opencontainers.image.description="Pingtai: government as a platform" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 pingtai \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin pingtai \
    && mkdir -p /app/var \
    && chown 10001:10001 /app/var
COPY --from=build /opt/pingtai /opt/pingtai
# In a container every part listens on all interfaces (on a laptop they default to loopback).
# The memory settings `pingtai up` gives its parts (docs/operations.md, "Memory on one
# machine"): glibc maps blocks of 128 KiB or more on their own and returns them when freed;
# code objects keep no column positions. Identity's Deployment adds glibc.malloc.hugetlb=1
# (transparent huge pages for argon2id's buffer), as `pingtai up` does for identity only.
ENV PATH=/opt/pingtai/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072 \
    PYTHONNODEBUGRANGES=1 \
    HOME=/tmp \
    PINGTAI_VAR_DIR=/app/var \
    PINGTAI_GATEWAY_HOST=0.0.0.0 \
    PINGTAI_IDENTITY_HOST=0.0.0.0 \
    PINGTAI_CATALOG_HOST=0.0.0.0 \
    PINGTAI_EXCHANGE_HOST=0.0.0.0 \
    PINGTAI_WORKFLOW_HOST=0.0.0.0 \
    PINGTAI_EVALUATION_HOST=0.0.0.0 \
    PINGTAI_PORTAL_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
# gateway 8000, identity 8001, catalog 8002, exchange 8003, workflow 8004, evaluation 8005,
# portal 8006 (PINGTAI_<PART>_PORT moves one).
EXPOSE 8000-8006
ENTRYPOINT ["pingtai"]
CMD ["serve", "gateway"]
