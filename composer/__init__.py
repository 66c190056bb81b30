"""The composer: the one place that runs the stages (pipeline.py) and the run lifecycle (runs.py)."""
