"""Streamlit's entry script (`streamlit run`): the app itself is `dashboards.app`."""

from dashboards.app import main

main()
