"""Running one run: the step loop, its journal in the database, the prompt, leases, retries and
events."""
