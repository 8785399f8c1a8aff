"""Pipeline stage: cli."""
