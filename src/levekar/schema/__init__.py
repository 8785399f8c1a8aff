"""Pipeline stage: schema."""
