"""Synthetic IBM-format data with a hidden ground truth."""
