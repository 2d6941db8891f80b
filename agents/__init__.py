"""Agents: specs, the step loop, tools, the Celery app and tasks, run state and events."""
