"""Customers' answers to "Was this you?": reply codes of fraud notices and the labels they become."""
