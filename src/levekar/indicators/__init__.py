"""Pipeline stage: indicators."""
