"""Workflow files: load safely, validate against the JSON Schema, build frozen spec objects."""
