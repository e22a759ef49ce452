"""Network architectures and their training recipes."""
