"""Tables and figures a person can read."""
