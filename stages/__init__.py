"""One thin typer entry point per DVC stage (dvc.yaml): read params, call pipeline/, write outputs."""
