"""Feature definitions: one declarative spec, rendered to point-in-time SQL (offline) and compiled
to a per-event updater (online)."""
