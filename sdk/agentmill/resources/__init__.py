"""Resources mirroring the REST API, each a sync class and an async twin on one module.

A new resource (memories, batches) is one more module here and one attribute on the clients.
"""
