"""The BI app over the aggregate tables (the QuickSight twin): fraud operations, customers, model health."""
