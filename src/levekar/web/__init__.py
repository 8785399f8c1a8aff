"""Pipeline stage: web."""
