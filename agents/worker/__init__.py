"""The Celery worker: tasks, queue, broker, sweeper, heartbeats and the cleaner."""
