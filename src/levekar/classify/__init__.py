"""Pipeline stage: classify."""
