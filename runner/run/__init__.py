"""One run: the plan built from a workflow and what the user gave, the loop that drives the model
and the tools, and the fan-out that hands every event to the sinks."""
