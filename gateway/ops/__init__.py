"""Operations: the health report, the DLQ alert, connector validation and the guided demo."""
