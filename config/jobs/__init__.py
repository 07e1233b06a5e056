"""The job queue's own app: why a job failed, kept for staff (Procrastinate stores only the status)."""
