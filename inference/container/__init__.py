"""The SageMaker bring-your-own-container server: one model from `/opt/ml/model`, `/ping` and
`/invocations` on `SAGEMAKER_BIND_TO_PORT`. No registry, no API keys, no platform settings or state."""
