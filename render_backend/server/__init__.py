"""The gRPC service: validation, job store, queue, auth."""
