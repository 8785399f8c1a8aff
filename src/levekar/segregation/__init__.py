"""Pipeline stage: segregation."""
