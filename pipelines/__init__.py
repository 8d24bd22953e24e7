"""SageMaker Pipeline definitions (one per model) and the local executor that runs the same definition JSON.

Nothing here imports the SageMaker SDK at import time: `pipelines.builder` (the only module that calls the
SDK) is imported when a definition is built.
"""
