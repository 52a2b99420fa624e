"""MLflow tracking: the store, runs and sweep parents, what each run records, and the Lightning logger."""
