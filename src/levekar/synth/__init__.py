"""Pipeline stage: synthetic register extracts (presets oslo, tiny, norway)."""
