# syntax=docker/dockerfile:1.7
# The runtime's job image (AWS Batch on Fargate: the batch job, the drift job): `python -m <module> ...`.
# Every package from requirements.lock checked against its hashes; the project's packages copied as source;
# a non-root user. Built by `cdk deploy` from the repository root (the folders listed in infra/images.py).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements.lock /tmp/requirements.lock
RUN python -m venv /opt/venv \
 && /opt/venv/bin/python -m pip install --require-hashes --no-deps -r /tmp/requirements.lock \
 && /opt/venv/bin/python -m pip uninstall --yes pip setuptools && rm /tmp/requirements.lock \
 && groupadd --system --gid 10001 cdp \
 && useradd --system --uid 10001 --gid cdp --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin cdp
COPY cdp /opt/cdp/cdp
COPY features /opt/cdp/features
COPY training /opt/cdp/training
COPY inference /opt/cdp/inference
COPY pipelines /opt/cdp/pipelines
COPY monitoring /opt/cdp/monitoring
COPY app /opt/cdp/app
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/opt/cdp PYTHONUNBUFFERED=1 HOME=/nonexistent \
    CDP_HOME=/tmp/cdp CDP_BACKEND=aws
USER cdp
ENTRYPOINT ["python"]
