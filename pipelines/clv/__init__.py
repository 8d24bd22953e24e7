"""The customer-lifetime-value model's pipeline."""
