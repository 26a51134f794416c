"""Developer tools: data builds and checks run from the Makefile."""
