"""Aggregate tables over the lake (the SPICE twin): small tables the dashboards read instead of raw rows."""
