"""Reporting: the leaderboard (compare) and the dashboard, both read from MLflow."""
