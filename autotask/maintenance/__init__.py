"""What a worker does besides running tasks: recovery, pruning, heartbeats, schedules.

Each duty returns what it did (a count, or when it is next due).
"""
