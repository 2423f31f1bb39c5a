"""One module per command group; ``runner.cli`` registers them. Heavy imports stay inside."""
