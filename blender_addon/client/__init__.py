"""gRPC client, worker thread and job records for the add-on."""
