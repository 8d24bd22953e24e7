"""One module per dashboard page; each renders from `DashboardData` only."""
