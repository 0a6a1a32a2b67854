"""Who may log in: the user directory and login throttling."""
