"""Renderers turn events into what a person (terminal) or a program (JSONL) reads."""
