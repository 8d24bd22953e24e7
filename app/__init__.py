"""The app layer: the `cdp` command and the demo, composing the packages below (the data platform,
features, pipelines, inference and monitoring). Nothing below imports it."""
