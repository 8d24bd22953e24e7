"""Serving: the inference app (SageMaker `/ping` + `/invocations` and the public REST API)."""
