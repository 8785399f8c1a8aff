"""External formats: JSON-stat 2.0, SSB's PxWebApi v2, and SSB's files as published (CSV exports with title
lines, grid files). The first stage: imports only `levekar.io` and third-party libraries."""
