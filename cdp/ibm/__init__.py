"""The IBM credit-card file format: schema, writer and validating reader."""
