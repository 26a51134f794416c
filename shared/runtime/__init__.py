"""The local runtime: the registered functions in one process, over the in-process bus and the local stand-ins."""
