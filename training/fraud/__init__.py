"""The fraud model's step scripts (preprocess.py, train.py, evaluate.py) and the raw-columns baseline."""
