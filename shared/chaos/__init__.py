"""The fault-injection run (`make chaos`)."""
