# syntax=docker/dockerfile:1.7
# The runtime's Lambda image (the extraction, stream-transform and public-API functions): the AWS Lambda
# Python base image, every package from requirements.lock checked against its hashes, and the project's
# own packages copied in as source. Each function sets its handler as the image command.
# Built by `cdk deploy` from the repository root (the CDK stages only the folders listed in infra/images.py).
ARG LAMBDA_IMAGE=public.ecr.aws/lambda/python:3.11
FROM ${LAMBDA_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements.lock /tmp/requirements.lock
RUN python -m pip install --require-hashes --no-deps --target "${LAMBDA_TASK_ROOT}" -r /tmp/requirements.lock \
 && rm /tmp/requirements.lock
COPY cdp ${LAMBDA_TASK_ROOT}/cdp
COPY features ${LAMBDA_TASK_ROOT}/features
COPY training ${LAMBDA_TASK_ROOT}/training
COPY inference ${LAMBDA_TASK_ROOT}/inference
ENV CDP_HOME=/tmp/cdp CDP_BACKEND=aws
CMD ["inference.lambda_handler.handler"]
