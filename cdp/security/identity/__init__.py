"""Who is calling: identities whose roles come from configuration (see `port`)."""
