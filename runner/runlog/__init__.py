"""The run log: every run and its events in SQLite, and the transcript that reads them back."""
