"""Providers translate one OpenAI-style API into flowrun's normalized events."""
