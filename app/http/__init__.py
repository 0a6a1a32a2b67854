"""HTTP edge of the app: what every request passes through, and the API docs pages."""
