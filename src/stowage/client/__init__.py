"""The stowage CLI client: talks to a server over HTTP, as users and scripts do."""
