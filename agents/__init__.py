"""Agents: agent and session records (`agent_store`), runs (`runs/`: the step loop and its
journal), tools (`tools/`), batches (`batches/`) and the Celery worker (`worker/`)."""
