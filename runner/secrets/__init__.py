"""Secrets: which values a run must never show (sources) and how they are hidden (masker)."""
