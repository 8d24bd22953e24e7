"""The AWS sandbox smoke run (`python -m infra.smoke`, `make aws-smoke`): see `infra.smoke.__main__`."""
