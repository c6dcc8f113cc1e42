"""The durable publish pipeline: submission, the queue and its workers, retries, the DLQ."""
