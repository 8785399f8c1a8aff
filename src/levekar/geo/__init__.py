"""Pipeline stage: geo."""
