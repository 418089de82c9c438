"""How `make run` runs the DAG (lanes): outside every stage's dependencies."""
