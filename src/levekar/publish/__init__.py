"""Pipeline stage: publish."""
