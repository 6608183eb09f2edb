"""MNIST: mirrors, verified download, IDX parsing and the train/validation/test split."""
