"""`egis`: one command line for Egis."""
