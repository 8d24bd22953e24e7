"""The customer-segmentation model's pipeline."""
