"""The NumPy neural-network engine of redes: no I/O, no Prefect, no MLflow."""
