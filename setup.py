"""Packaging for the CDP + ML platform. Dependencies are pinned in requirements.lock (installed by make)."""

from setuptools import find_packages, setup

setup(
    name="cdp-platform",
    version="0.1.0",
    description="Secure Customer Data Platform and ML platform for banks (local embedded default, AWS target)",
    python_requires=">=3.11,<3.12",
    packages=find_packages(
        include=["app", "app.*", "cdp", "cdp.*", "features", "features.*", "pipelines", "pipelines.*",
                 "training", "training.*", "inference", "inference.*", "monitoring", "monitoring.*",
                 "engagement", "engagement.*", "infra", "infra.*", "dashboards", "dashboards.*"]
    ),
    package_data={"": ["*.sql", "*.json", "*.yaml"]},
    entry_points={
        "console_scripts": [
            "cdp=app.main:main",
            "get-pipeline-definition=pipelines.cli:get_pipeline_definition_main",
            "run-pipeline=pipelines.cli:run_pipeline_main",
            "serve=inference.container.serve:main",
        ]
    },
)
