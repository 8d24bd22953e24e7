"""Experiment tracking: training runs' parameters, metrics, plots, feature manifest and what reproduces
them, logged to an MLflow experiment (`port.ExperimentTracker`; `Backends.experiment_tracker` picks where).
"""
