"""Customer engagement: fraud notices from the stream's alerts and marketing offers by segment and CLV.

Text is written by the text-generation port from de-identified context only, inside approved templates,
checked by guardrails, and sent through the mail port after core banking fills the placeholders.
"""
