"""Secure Customer Data Platform for banks."""
