"""What every stage shares: names, params and their validation, errors, files, the training record, the backend."""
