"""The fraud model's pipeline."""
