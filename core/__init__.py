"""Shared foundation: settings, database, embedded Postgres, migrations, tenants, errors."""
