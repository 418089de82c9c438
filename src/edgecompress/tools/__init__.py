"""How `make run` runs the DAG (lanes, the preload server): outside every stage's dependencies."""
