"""`python -m features`: re-render the committed SQL files of every feature view."""

from features.views import write_sql_files

for path in write_sql_files():
    print(path)
