"""The dashboards' model-health and customer tables, rebuilt at the end of every monitor run."""
