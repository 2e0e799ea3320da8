"""Bulk Data Access 2.0 ``$export``: kick-off parsing, jobs, the background export runner, groups."""
