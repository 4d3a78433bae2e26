"""Who is calling: API tokens, portal sessions, and the permission checks actions start with."""
