"""Batches: many inputs for one agent, run through the normal queue."""
