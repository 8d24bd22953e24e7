"""One module per dashboard page; each renders from `DashboardData` only. (Not named `pages`: Streamlit
would serve every module of a `pages` folder beside the entry script as a page of its own, unsigned-in.)"""
