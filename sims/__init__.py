"""Experiment scripts. Each is runnable as `python sims/<name>.py` and importable as `sims.<name>`."""
