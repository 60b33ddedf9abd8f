"""The site table, the hook protocol and recording/editing context managers."""
