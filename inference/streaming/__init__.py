"""Stream scoring: the transform Lambda's handler, its local runner, the scoring-endpoint port and the
scored-rows tables (`transactions_scored`, `fraud_alerts`)."""
