"""What the code declares: task options, the registry of task definitions, schedules."""
